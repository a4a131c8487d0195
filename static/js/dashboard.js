// The ministry dashboard: small enhancements of server-rendered charts. No inline
// script (the CSP forbids it); the page reads the same without this file.
(function () {
  "use strict";

  function wireSeriesToggles(root) {
    root.querySelectorAll(".series-toggle").forEach(function (button) {
      button.addEventListener("click", function () {
        var series = button.getAttribute("data-series");
        var shown = button.getAttribute("aria-pressed") !== "true";
        button.setAttribute("aria-pressed", shown ? "true" : "false");
        root.querySelectorAll('.bar[data-series="' + CSS.escape(series) + '"]').forEach(function (bar) {
          bar.classList.toggle("dimmed", !shown);
        });
      });
    });
  }

  function wireYearSelect(root) {
    var select = root.querySelector("select[data-autosubmit]");
    if (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("experiment-dashboard");
    if (!root) { return; }
    wireSeriesToggles(root);
    wireYearSelect(root);
  });
})();
