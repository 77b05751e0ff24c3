/* Draws the Metrics page's charts with uPlot (served from this app's static files).
 *
 * Each chart's figures are in a JSON <script> (Django's json_script) named by the chart
 * element's data-script. Colours come from the admin's CSS variables, so the charts follow its
 * light and dark themes, and are redrawn when the theme changes. The uPlot instances are kept
 * in window.smolqweryCharts, by chart key, for whoever needs the drawn data (the browser test).
 */
(function () {
  "use strict";
  var PALETTE = ["#4a90c2", "#e8a33d", "#5bb974", "#d9534f", "#9b7ede", "#3fb6b2"];
  var HALF = { day: 43200, week: 302400, month: 1296000 };
  var charts = (window.smolqweryCharts = {});

  function css(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function day(text) {
    return Date.parse(text + "T00:00:00Z") / 1000;
  }

  function number(value) {
    return value == null ? "–" : value.toLocaleString("en-US", { maximumFractionDigits: 2 });
  }

  function isoDate(ts) {
    return ts == null ? "–" : new Date(ts * 1000).toISOString().slice(0, 10);
  }

  function build(el) {
    var data = JSON.parse(document.getElementById(el.dataset.script).textContent);
    var quiet = css("--body-quiet-color", "#666");
    var grid = css("--hairline-color", "#e8e8e8");
    var bars = data.style === "bars" && data.series.length === 1;
    var series = [{ label: data.period + " starting", value: function (u, ts) { return isoDate(ts); } }];
    data.series.forEach(function (label, i) {
      var colour = PALETTE[i % PALETTE.length];
      var s = {
        label: label,
        stroke: colour,
        width: 2,
        value: function (u, v) { return number(v); },
        points: { show: data.labels.length <= 62 },
      };
      if (bars) {
        s.fill = colour + "cc";
        s.width = 1;
        s.points = { show: false };
        s.paths = uPlot.paths.bars({ size: [0.7, 80], align: 0 });
      }
      series.push(s);
    });
    var half = HALF[data.period] || HALF.day;
    var axis = {
      stroke: quiet,
      grid: { stroke: grid, width: 1 },
      ticks: { stroke: grid, width: 1 },
      font: "12px " + css("--font-family-primary", "sans-serif"),
    };
    var opts = {
      width: Math.max(el.clientWidth, 200),
      height: 220,
      series: series,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      scales: {
        x: { time: true, range: function (u, min, max) { return [min - half, max + half]; } },
        y: { range: function (u, min, max) { return [Math.min(0, min), max > 0 ? max * 1.05 : 1]; } },
      },
      axes: [
        Object.assign({}, axis),
        Object.assign({}, axis, { size: 64, values: function (u, vals) { return vals.map(number); } }),
      ],
      legend: { live: true },
      cursor: { points: { size: 6 } },
    };
    el.textContent = "";
    var u = new uPlot(opts, [data.labels.map(day)].concat(data.values), el);
    charts[data.key] = u;
    el.dataset.drawn = String(data.labels.length);
    return u;
  }

  // The values under a chart, as a table, built when its <details> is first opened: the
  // table is the chart's accessible equivalent, and a year of days for twenty tables would
  // make the page several times heavier if it were written by the server.
  function fillTable(details) {
    var wrap = details.querySelector(".table-wrap");
    if (!details.open || wrap.firstChild) return;
    var data = JSON.parse(document.getElementById(details.dataset.script).textContent);
    var table = document.createElement("table");
    var head = table.createTHead().insertRow();
    [data.period + " starting"].concat(data.series).forEach(function (text) {
      var th = document.createElement("th");
      th.scope = "col";
      th.textContent = text;
      head.appendChild(th);
    });
    var body = table.createTBody();
    data.labels.forEach(function (label, i) {
      var row = body.insertRow();
      var th = document.createElement("th");
      th.scope = "row";
      th.textContent = label;
      row.appendChild(th);
      data.values.forEach(function (values) {
        row.insertCell().textContent = number(values[i]);
      });
    });
    wrap.appendChild(table);
  }

  function drawAll() {
    var started = performance.now();
    var nodes = document.querySelectorAll(".smolqwery-metric[data-script]");
    Array.prototype.forEach.call(nodes, function (el) {
      try {
        build(el);
      } catch (err) {
        el.textContent = "This chart could not be drawn: " + err;
      }
    });
    // When the charts were last drawn and how long it took (ms; read by the benchmark).
    window.smolqweryDrawn = { at: performance.now(), took: performance.now() - started };
  }

  function ready() {
    var form = document.getElementById("metrics-form");
    var period = document.getElementById("metrics-period");
    if (form && period) {
      period.addEventListener("change", function () { form.submit(); });
    }
    drawAll();
    Array.prototype.forEach.call(document.querySelectorAll("details.metric-values"), function (d) {
      d.addEventListener("toggle", function () { fillTable(d); });
    });
    if (window.ResizeObserver) {
      var last = document.documentElement.clientWidth;
      new ResizeObserver(function () {
        var width = document.documentElement.clientWidth;
        if (width === last) return;
        last = width;
        Object.keys(charts).forEach(function (key) {
          var u = charts[key];
          u.setSize({ width: Math.max(u.root.parentNode.clientWidth, 200), height: 220 });
        });
      }).observe(document.documentElement);
    }
    // The admin's theme switch sets data-theme on <html>: redraw in the new colours.
    new MutationObserver(drawAll).observe(document.documentElement, {
      attributes: true,
      attributeFilter: ["data-theme"],
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
