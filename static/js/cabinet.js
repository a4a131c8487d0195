// The cabinet's behaviour. No inline scripts anywhere: pages pass data through
// data-* attributes and json_script blocks, so a strict Content-Security-Policy holds.
(function () {
  "use strict";

  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  // --- The document form adapts to the kind: grades, programme, or hours. --------
  function setupKindForm(form) {
    var families = readJson("kind-families") || {};
    var kind = form.querySelector("select[name=kind]");
    if (!kind) { return; }
    function apply() {
      var family = families[kind.value];
      form.querySelectorAll("[data-families]").forEach(function (node) {
        var wanted = node.getAttribute("data-families").split(" ");
        var box = node.closest("[data-field]") || node;
        var show = !family || wanted.indexOf(family) !== -1;
        box.hidden = !show;
        box.querySelectorAll("input, select, textarea").forEach(function (input) {
          if (input !== kind) { input.disabled = !show; }
        });
      });
    }
    kind.addEventListener("change", apply);
    apply();

    var addGrade = form.querySelector("[data-add-grade]");
    var rows = form.querySelector("[data-grade-rows]");
    if (addGrade && rows) {
      addGrade.addEventListener("click", function () {
        var last = rows.querySelector("tr:last-child");
        if (!last) { return; }
        var copy = last.cloneNode(true);
        copy.querySelectorAll("input").forEach(function (input) { input.value = ""; });
        rows.appendChild(copy);
        copy.querySelector("input").focus();
      });
    }
  }

  // --- An import job's live progress. ---------------------------------------------
  function setupJob(section) {
    var url = section.getAttribute("data-job-progress");
    var fill = section.querySelector("[data-progress-fill]");
    var bar = section.querySelector("[role=progressbar]");
    var wasFinished = section.getAttribute("data-finished") === "1";

    function show(state) {
      fill.style.width = state.percent + "%";
      bar.setAttribute("aria-valuenow", String(state.percent));
      ["state_label", "percent", "processed", "imported", "unchanged", "rejected"].forEach(function (name) {
        var node = section.querySelector("[data-field=" + name + "]");
        if (node) { node.textContent = String(state[name]); }
      });
      var total = section.querySelector("[data-field=total]");
      if (total && state.total !== null) { total.textContent = String(state.total); }
      var error = section.querySelector("[data-field=error]");
      if (error) { error.textContent = state.error || ""; error.hidden = !state.error; }
      var badge = section.querySelector("[data-field=state_label]");
      if (badge) { badge.className = "badge " + state.state; }
      section.querySelectorAll("[data-when-finished]").forEach(function (node) { node.hidden = !state.finished; });
      section.setAttribute("data-finished", state.finished ? "1" : "0");
    }

    function poll() {
      fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (state) {
          show(state);
          if (state.finished) {
            // Reload once so the rejected rows' table appears.
            if (!wasFinished && state.rejected > 0) { window.location.reload(); }
            return;
          }
          window.setTimeout(poll, 1000);
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }

    var initial = readJson("job-progress-initial");
    if (initial) { show(initial); }
    if (!wasFinished) { poll(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-kind-form]").forEach(setupKindForm);
    document.querySelectorAll("[data-job-progress]").forEach(setupJob);
  });
})();
