// wfk ui: live updates of a run's page through Server-Sent Events.
// Data is only ever set as textContent (or a number), never as markup.
"use strict";
(function () {
  var address = new URL(window.location.href);
  if (address.searchParams.has("token")) {  // the cookie now holds it: keep it out of history
    address.searchParams.delete("token");
    window.history.replaceState(null, "", address.pathname + address.search + address.hash);
  }
  var root = document.querySelector("[data-live]");
  var state = document.querySelector("[data-live-state]");
  if (!root || !window.EventSource) return;

  function each(selector, within, action) {
    Array.prototype.forEach.call(within.querySelectorAll(selector), action);
  }
  function fill(node, data) {
    each("[data-field]", node, function (el) {
      var name = el.getAttribute("data-field");
      if (!(name in data)) return;
      el.textContent = String(data[name]);
      if (el.hasAttribute("hidden") || data[name] === "") el.hidden = data[name] === "";
    });
    each("[data-field-class=status]", node, function (el) {
      if (!/^[A-Z]+$/.test(data.status || "")) return;
      el.className = el.className.replace(/\bstatus-[A-Z]+\b/g, "").trim() + " status-" + data.status;
    });
    if ("width" in data) each("[data-field-width]", node, function (el) { el.style.width = Number(data.width) + "%"; });
    each("[data-progress]", node, function (el) {
      el.hidden = data.progress === null || data.progress === undefined;
      if (!el.hidden) el.querySelector("progress").value = Number(data.progress);
    });
  }
  function keyed(selector, attribute, key, make) {
    var found = Array.prototype.filter.call(root.querySelectorAll(selector), function (el) {
      return el.getAttribute(attribute) === key;
    });
    if (found.length || !make) return found;
    var made = document.getElementById(make.template).content.firstElementChild.cloneNode(true);
    made.setAttribute(attribute, key);
    make.into().appendChild(made);
    return [made];
  }
  function group(number) {
    var timeline = root.querySelector("[data-timeline]");
    var empty = timeline.querySelector("[data-timeline-empty]");
    if (empty) empty.remove();
    var column = keyed("[data-group]", "data-group", String(number),
      { template: "group-template", into: function () { return timeline; } })[0];
    fill(column, { group: number });
    return column;
  }

  var source = new EventSource(root.getAttribute("data-live"));
  source.onopen = function () { if (state) state.textContent = "live"; };
  source.onerror = function () { if (state) state.textContent = "reconnecting…"; };
  source.addEventListener("run", function (event) {
    var data = JSON.parse(event.data);
    each("[data-run-field]", root, function (el) {
      var name = el.getAttribute("data-run-field");
      if (!(name in data)) return;
      el.textContent = String(data[name]);
      if (name === "error") el.hidden = data.error === "";
    });
    fill(root.querySelector("h1"), { status: data.status });
  });
  source.addEventListener("stage", function (event) {
    var data = JSON.parse(event.data);
    var column = group(data.group);
    column.style.flexGrow = String(Number(data.share));
    keyed("[data-stage-rows] > [data-stage]", "data-stage", data.stage_id,
      { template: "stage-template", into: function () { return root.querySelector("[data-stage-rows]"); } });
    keyed("[data-timeline] .lane", "data-stage", data.stage_id,
      { template: "lane-template", into: function () { return column; } });
    keyed("[data-stage]", "data-stage", data.stage_id).forEach(function (node) { fill(node, data); });
  });
  source.addEventListener("outbox", function (event) {
    var data = JSON.parse(event.data);
    keyed("[data-event-rows] > [data-event]", "data-event", String(data.sequence),
      { template: "event-template", into: function () { return root.querySelector("[data-event-rows]"); } })
      .forEach(function (node) { fill(node, data); });
  });
  source.addEventListener("end", function () {
    source.close();  // or EventSource would reconnect
    if (state) state.textContent = "run ended";
    root.setAttribute("data-ended", "");
  });
})();
