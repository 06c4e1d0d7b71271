// 总览's charts: the data is in <script type="application/json" id="chart-data"> (no inline
// script runs on these pages), drawn with Chart.js served from the console's own files.
(function () {
  "use strict";
  var source = document.getElementById("chart-data");
  if (!source || typeof Chart === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var palette = ["#243b53", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#8d6e63", "#546e7a"];
  function series(map) {
    return Object.keys(map).map(function (name, i) {
      return { label: name, data: map[name], backgroundColor: palette[i % palette.length] };
    });
  }
  var days = data.labels.map(function (d) { return d.slice(5); });
  var common = { animation: false, responsive: true, maintainAspectRatio: false };
  new Chart(document.getElementById("chart-runs"), {
    type: "bar",
    data: { labels: days, datasets: series(data.runs) },
    options: Object.assign({}, common, { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } })
  });
  var money = [{ label: "自动同意金额 ¥ approved", data: data.approved, borderColor: "#2e7d32", backgroundColor: "#2e7d32" }];
  if (data.cap !== null) {
    money.push({ label: "每日上限 ¥ daily cap", data: data.labels.map(function () { return data.cap; }), borderColor: "#c62828", borderDash: [6, 4], pointRadius: 0 });
  }
  new Chart(document.getElementById("chart-money"), {
    type: "line",
    data: { labels: days, datasets: money },
    options: Object.assign({}, common, { scales: { y: { beginAtZero: true } } })
  });
  new Chart(document.getElementById("chart-reasons"), {
    type: "bar",
    data: { labels: days, datasets: series(data.reasons) },
    options: Object.assign({}, common, { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } })
  });
  document.body.setAttribute("data-charts", "drawn");
}());
