/* Charts (docs/adr/0043-charts.md): draws every [data-chart] element from its JSON spec (the
   attribute's value, hypervision.core.charts.ChartSpec) with ECharts,
   served by the app. The numbers were aggregated on the server under the reader's rights;
   the canvas is hidden from assistive technologies, the table beside it (_chart.html) is the
   accessible alternative. Loaded after ECharts, only by pages that hold a chart (app.js).
   Draws again after htmx swaps (htmx:load), follows the container's size, and does not
   animate when the reader asks for reduced motion. */
(function () {
  "use strict";
  if (!window.echarts || window.HvCharts) return;

  // The DSFR's illustrative colours ("couleurs illustratives", main tokens), ordered so that
  // neighbouring series differ in hue and lightness.
  var PALETTE = [
    "#465f9d", // blue-ecume-main-400
    "#e4794a", // orange-terre-battue-main-645
    "#009081", // green-menthe-main-548
    "#a558a0", // purple-glycine-main-494
    "#c3992a", // yellow-moutarde-main-679
    "#417dc4", // blue-cumulus-main-526
    "#ce614a", // pink-tuile-main-556
    "#68a532", // green-bourgeon-main-640
    "#c08c65", // brown-caramel-main-648
    "#009099", // green-archipel-main-557
    "#e18b76", // pink-macaron-main-689
    "#00a95f", // green-emeraude-main-632
    "#bd987a", // brown-opera-main-680
    "#c8aa39", // yellow-tournesol-main-731
    "#aea397", // beige-gris-galet-main-702
    "#b7a73f", // green-tilleul-verveine-main-707
    "#d1b781"  // brown-cafe-creme-main-782
  ];
  // Heatmaps: from blue-france-975 to blue-france-sun-113.
  var HEAT = ["#f5f5fe", "#6a6af4", "#000091"];
  var still = window.matchMedia ? window.matchMedia("(prefers-reduced-motion: reduce)") : null;
  var numberFormat = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 2 });
  var charts = [];  // [element, instance, observer]

  function specOf(element) {  // the data-chart attribute's JSON (or a JSON script child)
    var script = element.querySelector('script[type="application/json"]');
    var text = element.dataset.chart || (script ? script.textContent : "");
    try { return text ? JSON.parse(text) : null; } catch (e) { return null; }
  }

  function formatter(unit) {
    return function (value) {
      if (value === null || value === undefined || value === "-") return "—";
      var text = typeof value === "number" ? numberFormat.format(value) : String(value);
      return unit ? text + "\u00a0" + unit : text;
    };
  }

  function axes(spec, ink) {
    var line = { lineStyle: { color: ink, opacity: 0.4 } };
    var category = {
      type: "category", data: spec.categories, name: spec.x_label || "", nameLocation: "middle",
      nameGap: 28, axisLabel: { color: ink, hideOverlap: true }, axisLine: line, axisTick: line
    };
    var value = {
      type: "value", name: spec.y_label || spec.unit || "", nameTextStyle: { color: ink },
      axisLabel: { color: ink, formatter: formatter(null) },
      splitLine: { lineStyle: { color: ink, opacity: 0.12 } }
    };
    category.nameTextStyle = { color: ink };
    if (spec.horizontal) {
      category.inverse = true;  // the first category on top, as read
      return { xAxis: value, yAxis: category };
    }
    return { xAxis: category, yAxis: value };
  }

  function cartesian(spec, ink) {
    var option = axes(spec, ink);
    var kind = spec.kind === "histogram" ? "bar" : spec.kind === "area" ? "line" : spec.kind;
    option.series = spec.series.map(function (s) {
      var one = { type: kind, name: s.name, data: s.values, connectNulls: false };
      if (spec.stacked) one.stack = "total";
      if (spec.kind === "area") one.areaStyle = { opacity: spec.stacked ? 0.85 : 0.35 };
      if (spec.kind === "histogram") one.barCategoryGap = "2%";
      if (kind === "line") one.symbolSize = 6;
      return one;
    });
    option.tooltip = { trigger: "axis", valueFormatter: formatter(spec.unit) };
    return option;
  }

  function pie(spec) {
    var data = [];
    spec.categories.forEach(function (name, i) {
      var value = spec.series[0].values[i];
      if (value !== null) data.push({ name: name, value: value });
    });
    return {
      tooltip: { trigger: "item", valueFormatter: formatter(spec.unit) },
      series: [{
        type: "pie", name: spec.series[0].name, data: data,
        radius: spec.kind === "donut" ? ["45%", "70%"] : "70%",
        label: { formatter: function (p) { return p.name + " : " + numberFormat.format(Math.round(p.percent * 10) / 10) + "\u00a0%"; } }
      }]
    };
  }

  function heatmap(spec, ink) {
    var data = [], low = Infinity, high = -Infinity;
    spec.series.forEach(function (s, row) {
      s.values.forEach(function (value, column) {
        if (value === null) return;
        data.push({ value: [column, row, value] });
        low = Math.min(low, value); high = Math.max(high, value);
      });
    });
    data.forEach(function (cell) {  // dark cells get white figures
      var v = cell.value[2];
      cell.label = { color: high > low && (v - low) / (high - low) > 0.55 ? "#ffffff" : "#161616" };
    });
    var option = axes(spec, ink);
    option.yAxis = { type: "category", data: spec.rows, inverse: true, name: spec.y_label || "",
                     axisLabel: { color: ink }, nameTextStyle: { color: ink } };
    option.visualMap = {
      min: data.length ? low : 0, max: data.length ? high : 1, calculable: false,
      orient: "horizontal", left: "center", bottom: 0, inRange: { color: HEAT },
      textStyle: { color: ink }, formatter: formatter(spec.unit)
    };
    option.grid = { left: 8, right: 8, top: 16, bottom: 56, containLabel: true };
    option.tooltip = { trigger: "item", valueFormatter: formatter(spec.unit) };
    option.series = [{ type: "heatmap", name: spec.y_label || "", data: data,
                       label: { show: data.length <= 120 } }];
    return option;
  }

  function optionOf(spec, element) {
    var ink = getComputedStyle(element).color || "#161616";
    var option = spec.kind === "heatmap" ? heatmap(spec, ink)
      : spec.kind === "pie" || spec.kind === "donut" ? pie(spec) : cartesian(spec, ink);
    option.color = PALETTE;
    option.animation = !(still && still.matches);
    option.aria = { enabled: false };  // the table beside it is the alternative
    option.textStyle = { fontFamily: "Marianne, arial, sans-serif", color: ink };
    // Drawn in the canvas: no HTML string (the CSP allows no inline style).
    option.tooltip.renderMode = "richText";
    if (!option.grid) option.grid = { left: 8, right: 16, top: 36, bottom: 8, containLabel: true };
    var pieLike = spec.kind === "pie" || spec.kind === "donut";
    if ((spec.series.length > 1 && spec.kind !== "heatmap") || pieLike) {
      option.legend = { type: "scroll", top: 0, textStyle: { color: ink } };
      if (option.grid.top < 36) option.grid.top = 36;
      if (pieLike) { option.legend.top = null; option.legend.bottom = 0; }
    }
    return option;
  }

  function draw(element) {
    if (element.dataset.chartReady) return;
    var spec = specOf(element);
    if (!spec) return;
    element.dataset.chartReady = "1";
    var instance = window.echarts.init(element, null, { renderer: "canvas" });
    instance.setOption(optionOf(spec, element));
    // The drawing is for the eyes only; the table (aria-controls of the button) is for all.
    element.setAttribute("aria-hidden", "true");
    element.querySelectorAll("canvas").forEach(function (c) { c.setAttribute("aria-hidden", "true"); });
    var observer = window.ResizeObserver ? new ResizeObserver(function () { instance.resize(); }) : null;
    if (observer) observer.observe(element);
    charts.push([element, instance, observer, spec]);
  }

  function drawAll(root) {
    var scope = root && root.querySelectorAll ? root : document;
    if (scope.matches && scope.matches("[data-chart]")) draw(scope);
    scope.querySelectorAll("[data-chart]").forEach(draw);
  }

  function forget(root) {  // charts swapped out by htmx: free their canvas and observer
    charts = charts.filter(function (held) {
      if (root !== held[0] && !(root.contains && root.contains(held[0]))) return true;
      if (held[2]) held[2].disconnect();
      held[1].dispose();
      return false;
    });
  }

  function redrawAll() {  // the reader's motion preference changed
    charts.forEach(function (held) { held[1].setOption(optionOf(held[3], held[0]), true); });
  }

  document.addEventListener("htmx:load", function (event) { drawAll(event.detail && event.detail.elt); });
  document.addEventListener("htmx:beforeCleanupElement", function (event) { forget(event.target); });
  if (still && still.addEventListener) still.addEventListener("change", redrawAll);
  if (!window.ResizeObserver) window.addEventListener("resize", function () {
    charts.forEach(function (held) { held[1].resize(); });
  });
  window.HvCharts = { draw: drawAll };
  drawAll(document);
})();
