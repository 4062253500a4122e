// leadbridge panel behaviour: no inline scripts (the CSP forbids them), everything wired by data attributes.
(function () {
  "use strict";

  function onReady(fn) {
    if (document.readyState === "complete") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  // Forms asking for confirmation: <form data-confirm="Really?">
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  }, true);

  // Filters that apply on change: <select data-autosubmit>
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el instanceof HTMLElement && el.hasAttribute("data-autosubmit") && el.form) el.form.requestSubmit();
  });

  // Checkbox selection with a toolbar ("Send to <connector>").
  function initSelection() {
    var bar = document.querySelector("[data-selection-bar]");
    var table = document.querySelector("[data-selectable]");
    if (!bar || !table) return;
    var boxes = table.querySelectorAll('input[name="contact_ids"]');
    var all = table.querySelector("[data-select-all]");
    var count = bar.querySelector("[data-selection-count]");
    function update() {
      var n = 0;
      boxes.forEach(function (b) { if (b.checked) n++; });
      count.textContent = String(n);
      bar.hidden = n === 0;
      if (all) { all.checked = n > 0 && n === boxes.length; all.indeterminate = n > 0 && n < boxes.length; }
    }
    boxes.forEach(function (b) { b.addEventListener("change", update); });
    if (all) all.addEventListener("change", function () {
      boxes.forEach(function (b) { b.checked = all.checked; });
      update();
    });
    var clear = bar.querySelector("[data-selection-clear]");
    if (clear) clear.addEventListener("click", function () {
      boxes.forEach(function (b) { b.checked = false; });
      update();
    });
    update();
  }

  // Copy buttons next to tokens shown once.
  function initCopy() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = button.parentElement.querySelector("[data-copy-source]");
        if (!source || !navigator.clipboard) return;
        navigator.clipboard.writeText(source.textContent.trim()).then(function () {
          button.textContent = "Copied";
        });
      });
    });
  }

  // Stacked bar charts per side from <div data-chart='{"labels": [...], "sides": {...}}'>.
  var COLORS = { created: "#16a34a", updated: "#2563eb", skipped: "#a3a3a3", deleted: "#f59e0b", failed: "#dc2626" };
  function initCharts() {
    if (typeof window.Chart === "undefined") return;
    document.querySelectorAll("[data-chart]").forEach(function (holder) {
      var data;
      try { data = JSON.parse(holder.getAttribute("data-chart")); } catch (e) { return; }
      holder.querySelectorAll("canvas[data-side]").forEach(function (canvas) {
        var side = data.sides[canvas.dataset.side] || {};
        var datasets = Object.keys(COLORS).map(function (outcome) {
          return { label: outcome, data: side[outcome] || [], backgroundColor: COLORS[outcome], stack: "s", borderRadius: 2 };
        });
        new window.Chart(canvas, {
          type: "bar",
          data: { labels: data.labels.map(function (d) { return d.slice(5); }), datasets: datasets },
          options: {
            animation: false, responsive: true, maintainAspectRatio: false,
            plugins: { legend: { position: "bottom", labels: { boxWidth: 10, boxHeight: 10 } } },
            scales: { x: { stacked: true, grid: { display: false }, ticks: { maxTicksLimit: 8, maxRotation: 0 } },
                      y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } }
          }
        });
      });
    });
  }

  onReady(function () { initSelection(); initCopy(); initCharts(); });
})();
