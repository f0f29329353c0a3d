// Clinic dashboard: Kaplan-Meier curves of the durability of response, with their bands.
// The curves come from the page's JSON block (#km-data); the Content-Security-Policy
// forbids inline scripts, so this file draws them. S(t) is a step function: it holds its
// value until the next time and drops there (Chart.js "stepped: before").
document.addEventListener("DOMContentLoaded", function () {
  var block = document.getElementById("km-data");
  if (!block || typeof Chart === "undefined") { return; }
  var definitions = JSON.parse(block.textContent);
  var colours = ["#1f5f99", "#c0392b", "#27ae60", "#8e44ad", "#e67e22", "#16a085", "#7f8c8d", "#d35400"];
  var points = function (xs, ys) { return xs.map(function (x, i) { return { x: x, y: ys[i] }; }); };
  definitions.forEach(function (d) {
    var canvas = document.getElementById("km-" + d.id);
    if (!canvas || !d.curves.length) { return; }
    var sets = [];
    var split = d.curves.length > 1;
    d.curves.forEach(function (c, i) {
      var colour = colours[i % colours.length];
      if (c.overall) {
        // the band: upper bound filled down to the lower bound (the next dataset)
        sets.push({ label: c.label + ": upper band", data: points(c.time, c.upper), stepped: "before",
          borderColor: "rgba(31,95,153,0.25)", backgroundColor: "rgba(31,95,153,0.15)", borderWidth: 1,
          pointRadius: 0, fill: "+1" });
        sets.push({ label: c.label + ": lower band", data: points(c.time, c.lower), stepped: "before",
          borderColor: "rgba(31,95,153,0.25)", borderWidth: 1, pointRadius: 0, fill: false });
      }
      sets.push({ label: c.label, data: points(c.time, c.survival), stepped: "before",
        borderColor: colour, borderWidth: c.overall ? 2.5 : 1.5, borderDash: c.overall && split ? [6, 3] : [],
        pointRadius: 0, fill: false });
    });
    new Chart(canvas, { type: "line", data: { datasets: sets }, options: {
      animation: false, maintainAspectRatio: false, parsing: false,
      plugins: { legend: { labels: { filter: function (item) { return !/ band$/.test(item.text); } } },
                 title: { display: true, text: d.title + ": share " + d.still } },
      scales: { x: { type: "linear", min: 0, title: { display: true, text: d.since } },
                y: { min: 0, max: 1, title: { display: true, text: "share " + d.still } } } } });
    canvas.dataset.rendered = "true";
  });
});
