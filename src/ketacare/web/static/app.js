// ketacare page behaviour that needs no inline script (the Content-Security-Policy forbids it).
document.addEventListener("htmx:responseError", function (event) {
  var box = document.getElementById("htmx-error");
  if (!box) {
    box = document.createElement("p");
    box.id = "htmx-error";
    box.className = "alert";
    box.setAttribute("role", "alert");
    document.querySelector("main").prepend(box);
  }
  box.textContent = "The request failed (" + event.detail.xhr.status + "). Reload the page and try again.";
});

// Skip logic of questionnaires: an item with data-enable-item shows only when that item has
// the answer in data-enable-equals; a hidden item's answer is cleared so it is not sent.
function ketacareSkipLogic(form) {
  form.querySelectorAll("fieldset[data-enable-item]").forEach(function (fs) {
    var source = form.querySelector('input[name="item_' + fs.dataset.enableItem + '"]:checked');
    var show = source !== null && source.value === fs.dataset.enableEquals;
    fs.hidden = !show;
    if (!show) { fs.querySelectorAll("input").forEach(function (i) { i.checked = false; }); }
  });
}
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form.questionnaire").forEach(function (form) {
    ketacareSkipLogic(form);
    form.addEventListener("change", function () { ketacareSkipLogic(form); });
  });
});

// Exposure preview: plasma, effect site and metabolite curves from the JSON the page carries.
document.addEventListener("DOMContentLoaded", function () {
  var data = document.getElementById("exposure-data");
  var canvas = document.getElementById("exposure-chart");
  if (!data || !canvas || typeof Chart === "undefined") { return; }
  var e = JSON.parse(data.textContent);
  if (!e.available) { return; }
  var points = function (ys) { return e.time_h.map(function (t, i) { return { x: t, y: ys[i] }; }); };
  var sets = [{ label: "plasma (ng/mL)", data: points(e.plasma_ng_per_ml), borderColor: "#1f5f99", pointRadius: 0, borderWidth: 1.5 }];
  var colours = ["#c0392b", "#8e44ad"];
  Object.keys(e.effect_ng_per_ml || {}).forEach(function (k, i) {
    sets.push({ label: ((e.effect_labels || {})[k] || k) + " (ng/mL)", data: points(e.effect_ng_per_ml[k]), borderColor: colours[i % 2], pointRadius: 0, borderWidth: 1.5 });
  });
  if (e.metabolite_ng_per_ml) {
    sets.push({ label: e.metabolite + " (ng/mL)", data: points(e.metabolite_ng_per_ml), borderColor: "#27ae60", pointRadius: 0, borderWidth: 1.5, borderDash: [4, 3] });
  }
  new Chart(canvas, { type: "line", data: { datasets: sets }, options: {
    animation: false, maintainAspectRatio: false, parsing: false,
    scales: { x: { type: "linear", title: { display: true, text: "hours from the first session" } },
              y: { title: { display: true, text: "ng/mL" }, beginAtZero: true } } } });
  canvas.dataset.rendered = "true";
});

// Simulation page: plasma (or the population median with its 5th-95th band), effect sites, metabolite.
document.addEventListener("DOMContentLoaded", function () {
  var data = document.getElementById("sim-data");
  var canvas = document.getElementById("sim-chart");
  if (!data || !canvas || typeof Chart === "undefined") { return; }
  var e = JSON.parse(data.textContent);
  var pts = function (ys, ts) { return (ts || e.time_h).map(function (t, i) { return { x: t, y: ys[i] }; }); };
  var sets = [];
  if (e.population) {
    var bt = e.population.time_h;  // the band has its own (coarser) time axis
    sets.push({ label: "95th percentile", data: pts(e.population.p95, bt), borderColor: "rgba(31,95,153,0.2)", backgroundColor: "rgba(31,95,153,0.15)", pointRadius: 0, fill: "+1" });
    sets.push({ label: "5th percentile", data: pts(e.population.p05, bt), borderColor: "rgba(31,95,153,0.2)", pointRadius: 0, fill: false });
    sets.push({ label: "population median (ng/mL)", data: pts(e.population.p50, bt), borderColor: "#12324f", pointRadius: 0, borderDash: [5, 3] });
  }
  sets.push({ label: "typical patient plasma (ng/mL)", data: pts(e.plasma_ng_per_ml), borderColor: "#1f5f99", pointRadius: 0 });
  var colours = ["#c0392b", "#8e44ad"];
  Object.keys(e.effect_ng_per_ml || {}).forEach(function (k, i) {
    sets.push({ label: ((e.effect_labels || {})[k] || k) + " (ng/mL)", data: pts(e.effect_ng_per_ml[k]), borderColor: colours[i % 2], pointRadius: 0 });
  });
  if (e.metabolite_ng_per_ml) {
    sets.push({ label: e.metabolite + " (ng/mL)", data: pts(e.metabolite_ng_per_ml), borderColor: "#27ae60", pointRadius: 0, borderDash: [4, 3] });
  }
  new Chart(canvas, { type: "line", data: { datasets: sets }, options: { animation: false, maintainAspectRatio: false, parsing: false,
    scales: { x: { type: "linear", title: { display: true, text: "hours" } }, y: { beginAtZero: true, title: { display: true, text: "ng/mL" } } } } });
  canvas.dataset.rendered = "true";
});

// Chair view: vitals over time with the alert limits drawn as dashed lines.
document.addEventListener("DOMContentLoaded", function () {
  var data = document.getElementById("vitals-data");
  var canvas = document.getElementById("vitals-chart");
  if (!data || !canvas || typeof Chart === "undefined") { return; }
  var d = JSON.parse(data.textContent);
  var colours = { sbp_mmhg: "#c0392b", dbp_mmhg: "#e67e22", hr_per_min: "#1f5f99", spo2_pct: "#27ae60", rr_per_min: "#8e44ad" };
  var t0 = d.vitals.length ? Date.parse(d.vitals[0].at) : 0;
  var sets = Object.keys(colours).map(function (k) {
    return { label: (d.labels && d.labels[k]) || k, borderColor: colours[k], data: d.vitals.filter(function (v) { return v[k] !== null; })
      .map(function (v) { return { x: (Date.parse(v.at) - t0) / 60000, y: v[k] }; }) };
  });
  d.thresholds.forEach(function (t) {
    var xs = d.vitals.length ? [0, (Date.parse(d.vitals[d.vitals.length - 1].at) - t0) / 60000 + 5] : [0, 60];
    sets.push({ label: ((d.labels && d.labels[t.vital]) || t.vital) + " " + t.direction + " limit", borderColor: colours[t.vital] || "#999", borderDash: [6, 4], pointRadius: 0, data: xs.map(function (x) { return { x: x, y: t.value }; }) });
  });
  new Chart(canvas, { type: "line", data: { datasets: sets }, options: { animation: false, maintainAspectRatio: false, parsing: false,
    scales: { x: { type: "linear", title: { display: true, text: "minutes from the first vitals" } } } } });
  canvas.dataset.rendered = "true";
});

// Personalise: the individual (MAP) curve, its 5th-95th band, the typical patient, the levels.
document.addEventListener("DOMContentLoaded", function () {
  var data = document.getElementById("fit-data");
  var canvas = document.getElementById("fit-chart");
  if (!data || !canvas || typeof Chart === "undefined") { return; }
  var d = JSON.parse(data.textContent);
  var pts = function (ys) { return d.time_h.map(function (t, i) { return { x: t, y: ys[i] }; }); };
  var sets = [];
  if (d.band) {
    sets.push({ label: "95th percentile", data: pts(d.band.p95), borderColor: "rgba(31,95,153,0.2)", backgroundColor: "rgba(31,95,153,0.15)", pointRadius: 0, fill: "+1" });
    sets.push({ label: "5th percentile", data: pts(d.band.p05), borderColor: "rgba(31,95,153,0.2)", pointRadius: 0, fill: false });
  }
  sets.push({ label: "this patient (ng/mL)", data: pts(d.map), borderColor: "#1f5f99", pointRadius: 0 });
  sets.push({ label: "typical patient", data: pts(d.typical), borderColor: "#999", borderDash: [5, 3], pointRadius: 0 });
  sets.push({ label: "measured", type: "scatter", showLine: false, borderColor: "#c0392b", backgroundColor: "#c0392b", pointRadius: 5,
    data: d.samples.filter(function (s) { return s.analyte === "plasma"; }).map(function (s) { return { x: s.time_h, y: s.below_lloq ? s.lloq_ng_per_ml : s.value_ng_per_ml }; }) });
  new Chart(canvas, { type: "line", data: { datasets: sets }, options: { animation: false, maintainAspectRatio: false, parsing: false,
    scales: { x: { type: "linear", title: { display: true, text: "hours from the first dose" } }, y: { beginAtZero: true, title: { display: true, text: "ng/mL" } } } } });
  canvas.dataset.rendered = "true";
});

// Patient chart, outcome panel: one small chart per measure (scores as a line, the doses given
// as bars on a second axis, dashed lines where a response definition applies), and the
// dissociation recorded per session. Dates are shown in the clinic's time zone.
document.addEventListener("DOMContentLoaded", function () {
  var data = document.getElementById("outcomes-data");
  if (!data || typeof Chart === "undefined") { return; }
  var d = JSON.parse(data.textContent);
  var day = new Intl.DateTimeFormat("en-GB", { timeZone: d.zone, day: "numeric", month: "short" });
  var DAY_MS = 86400000;
  var times = d.sessions.map(function (s) { return s.t_ms; });
  d.measures.forEach(function (m) { m.points.forEach(function (p) { times.push(p.t_ms); }); });
  var lo = Math.min.apply(null, times), hi = Math.max.apply(null, times);
  var pad = Math.max((hi - lo) * 0.05, DAY_MS / 2);
  var xmin = lo - pad, xmax = hi + pad;
  var step = DAY_MS * Math.max(1, Math.ceil((xmax - xmin) / DAY_MS / 6));  // whole days between ticks
  var maxDose = Math.max.apply(null, [1].concat(d.sessions.map(function (s) { return s.dose_mg; })));
  var colours = { nrs_pain: "#c0392b", bpi_interference: "#e67e22", phq9: "#1f5f99", gad7: "#8e44ad", pgic: "#27ae60" };
  var fmt = function (v) { return Math.round(v * 10) / 10; };

  var doses = function () {
    return { type: "bar", label: "dose given (mg)", yAxisID: "y1", order: 2, barThickness: 8,
      backgroundColor: "rgba(120,130,145,0.35)", borderColor: "rgba(120,130,145,0.7)", borderWidth: 1,
      data: d.sessions.map(function (s) {
        return { x: s.t_ms, y: s.dose_mg, kind: "session", local: s.local,
          text: "session " + s.number + " (plan " + s.plan_id + ", no. " + s.plan_session + "): " + fmt(s.dose_mg) + " mg" + (s.ongoing ? " so far" : "") };
      }) };
  };
  var options = function (yTitle, ymin, ymax, extraY) {
    var y = { type: "linear", position: "left", min: ymin, max: ymax, title: { display: true, text: yTitle } };
    Object.keys(extraY || {}).forEach(function (k) { y[k] = extraY[k]; });
    return {
      animation: false, maintainAspectRatio: false, parsing: false, normalized: true,
      interaction: { mode: "nearest", intersect: false, axis: "x" },
      plugins: {
        legend: { labels: { boxWidth: 12, font: { size: 11 } } },
        tooltip: { callbacks: {
          title: function (items) { return items.length ? items[0].raw.local || "" : ""; },
          label: function (item) { return item.raw.text || (item.dataset.label + ": " + item.raw.y); }
        } }
      },
      scales: {
        x: { type: "linear", min: xmin, max: xmax, ticks: { stepSize: step, maxTicksLimit: 8, callback: function (v) { return day.format(new Date(v)); } } },
        y: y,
        y1: { type: "linear", position: "right", beginAtZero: true, suggestedMax: maxDose * 1.1,
              grid: { drawOnChartArea: false }, title: { display: true, text: "mg given" } }
      }
    };
  };

  d.measures.forEach(function (m) {
    var canvas = document.getElementById("outcome-chart-" + m.id);
    if (!canvas || !m.points.length) { return; }
    var shorts = {};
    m.definitions.forEach(function (def) { shorts[def.id] = def.short; });
    var colour = colours[m.id] || "#12324f";
    var sets = [{ type: "line", label: m.short, yAxisID: "y", order: 1, borderColor: colour, backgroundColor: colour,
      pointRadius: 4, pointHoverRadius: 7, borderWidth: 2,
      data: m.points.map(function (p) {
        var parts = [m.short + " " + fmt(p.value)];
        parts.push(p.after_session ? "after session " + p.after_session : "before the first session");
        if (p.phase === "baseline") { parts.push("baseline"); }
        else if (p.change_percent !== null && p.phase === "follow_up") { parts.push((p.change_percent > 0 ? "+" : "") + Math.round(p.change_percent) + "% from baseline"); }
        var met = p.met.map(function (id) { return shorts[id] || id; });
        if (met.length) { parts.push("meets " + met.join(", ")); }
        if (p.source === "patient") { parts.push("self-report"); }
        return { x: p.t_ms, y: p.value, kind: "score", local: p.local, session: p.after_session, text: parts.join(" · ") };
      }) }];
    var dashes = [[6, 4], [2, 3]];
    m.definitions.filter(function (def) { return def.line !== null; }).forEach(function (def, i) {
      sets.push({ type: "line", label: def.short, yAxisID: "y", order: 0,
        borderColor: colour, borderWidth: 1, borderDash: dashes[i % 2], pointRadius: 0, pointHitRadius: 0,
        data: [xmin, xmax].map(function (x) { return { x: x, y: def.line, local: "", text: def.short + ": " + def.line_text }; }) });
    });
    if (d.sessions.length) { sets.push(doses()); }
    new Chart(canvas, { type: "line", data: { datasets: sets }, options: options(m.short, m.scale_min, m.scale_max) });
    canvas.dataset.rendered = "true";
  });

  var dis = document.getElementById("outcome-chart-dissociation");
  if (dis) {
    var rated = d.sessions.filter(function (s) { return s.dissociation !== null; });
    var sets = [{ type: "line", showLine: false, label: "dissociation recorded", yAxisID: "y", order: 1,
      borderColor: "#6c3483", backgroundColor: "#6c3483", pointRadius: 6, pointStyle: "rectRot",
      data: rated.map(function (s) {
        return { x: s.t_ms, y: s.dissociation ? 1 : 0, local: s.local, session: s.number,
          text: "session " + s.number + ": dissociation " + (s.dissociation ? "present" : "absent") };
      }) }, doses()];
    new Chart(dis, { type: "line", data: { datasets: sets }, options: options("recorded", -0.2, 1.2,
      { ticks: { stepSize: 1, callback: function (v) { return v === 1 ? "present" : (v === 0 ? "absent" : ""); } } }) });
    dis.dataset.rendered = "true";
  }
});

// Cumulative dose page: the running total given per molecule, and for each mg cap of the
// clinic the total of its window at each session with the cap drawn as a dashed line.
document.addEventListener("DOMContentLoaded", function () {
  var data = document.getElementById("cumulative-data");
  var canvas = document.getElementById("cumulative-chart");
  if (!data || !canvas || typeof Chart === "undefined") { return; }
  var d = JSON.parse(data.textContent);
  var colours = ["#1f5f99", "#c0392b", "#27ae60", "#8e44ad", "#e67e22"];
  var xs = [];
  d.series.forEach(function (s) { s.points.forEach(function (p) { xs.push(p.x); }); });
  if (!xs.length) { return; }
  var lo = Math.min.apply(null, xs), hi = Math.max.apply(null, xs);
  var short = hi - lo < 3 * 86400000;  // within three days: show the time as well
  var day = new Intl.DateTimeFormat("en-GB", short
    ? { timeZone: d.zone, day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }
    : { timeZone: d.zone, day: "numeric", month: "short", year: "2-digit" });
  var pad = Math.max((hi - lo) * 0.05, 43200000);
  var sets = [];
  d.series.forEach(function (s, i) {
    var colour = colours[i % colours.length];
    sets.push({ label: s.label, data: s.points, stepped: s.limit === undefined ? "before" : false,
      borderColor: colour, backgroundColor: colour, pointRadius: 3, borderWidth: 2 });
    if (s.limit !== undefined) {
      sets.push({ label: s.limit_label, borderColor: colour, borderDash: [6, 4], borderWidth: 1, pointRadius: 0,
        data: [{ x: lo - pad, y: s.limit, text: s.limit_label }, { x: hi + pad, y: s.limit, text: s.limit_label }] });
    }
  });
  new Chart(canvas, { type: "line", data: { datasets: sets }, options: {
    animation: false, maintainAspectRatio: false, parsing: false,
    plugins: { tooltip: { callbacks: {
      title: function (items) { return items.length ? items[0].raw.local || "" : ""; },
      label: function (item) { return (item.raw.text ? item.raw.text + ": " : "") + item.raw.y + " mg"; } } } },
    scales: { x: { type: "linear", min: lo - pad, max: hi + pad, ticks: { maxTicksLimit: 8, callback: function (v) { return day.format(new Date(v)); } } },
              y: { beginAtZero: true, title: { display: true, text: "mg given" } } } } });
  canvas.dataset.rendered = "true";
});

// A refreshed region (the chair's live part, every KETACARE_LIVE_REFRESH_SECONDS: 5 s) is not replaced while someone is
// filling in a form inside it (an alert's acknowledgement): their choice and note would be lost.
function ketacareFormInUse(region) {
  var active = document.activeElement;
  if (active && region.contains(active) && active.matches("input, select, textarea")) {
    return true;
  }
  return Array.prototype.some.call(
    region.querySelectorAll("form select, form textarea, form input:not([type=hidden])"),
    function (field) { return field.value !== ""; }
  );
}
document.addEventListener("htmx:beforeRequest", function (event) {
  var region = event.detail.elt;
  if (region && region.id === "live" && ketacareFormInUse(region)) {
    event.preventDefault();
  }
});
// A refresh that left before the nurse started typing can come back after: its answer is
// dropped too, or it would wipe the choice made while it was on its way.
document.addEventListener("htmx:beforeSwap", function (event) {
  var region = event.detail.target;
  if (region && region.id === "live" && ketacareFormInUse(region)) {
    event.detail.shouldSwap = false;
  }
});
