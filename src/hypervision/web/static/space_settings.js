/* The settings of the selected module in the space editor (docs/adr/0044): lists to choose
   from — sources, the fields an officer may read, aggregates, groupings, periods, chart
   kinds, entry filters, thresholds — never code to type. Each choice is one step of the
   editor's history (space_editor.js); the form is built again after a choice that changes
   what else can be chosen, the focus kept on the same control. */
(function () {
  "use strict";
  var E = window.hvSpaceEditor;
  if (!E) return;
  var M, C, box;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function config() { return E.module().config; }
  function choose(mutate) {  // a choice: one step, then the form again, focus kept
    var focused = document.activeElement && document.activeElement.id;
    E.change(function () { mutate(E.module()); }, null);
    E.build();
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
  }
  function select(id, label, options, value, onChange) {
    var group = el("div", { "class": "fr-select-group" });
    group.appendChild(el("label", { "class": "fr-label", "for": id }, label));
    var input = el("select", { "class": "fr-select", id: id });
    options.forEach(function (o) {
      var option = el("option", { value: o[0] }, o[1]);
      if (String(o[0]) === String(value === undefined || value === null ? "" : value)) option.selected = true;
      input.appendChild(option);
    });
    input.addEventListener("change", function () { choose(function (m) { onChange(m, input.value); }); });
    group.appendChild(input);
    box.appendChild(group);
  }
  function text(id, label, value, onInput, attrs) {
    var group = el("div", { "class": "fr-input-group" });
    group.appendChild(el("label", { "class": "fr-label", "for": id }, label));
    var multiline = attrs && attrs.rows;
    var input = el(multiline ? "textarea" : "input", Object.assign({ "class": "fr-input", id: id }, attrs || {}));
    input.value = value === undefined || value === null ? "" : value;
    input.addEventListener("input", function () {
      E.typing(id, function () { onInput(E.module(), input.value); });
    });
    group.appendChild(input);
    box.appendChild(group);
    return group;
  }
  function checks(prefix, legend, options, values, onChange) {
    var set = el("fieldset", { "class": "fr-fieldset hv-checklist", id: prefix });
    set.appendChild(el("legend", { "class": "fr-fieldset__legend fr-text--regular fr-text--sm" }, legend));
    options.forEach(function (o) {
      var item = el("div", { "class": "fr-fieldset__element" });
      var group = el("div", { "class": "fr-checkbox-group fr-checkbox-group--sm" });
      var input = el("input", { type: "checkbox", id: prefix + "-" + o[0], value: o[0] });
      input.checked = (values || []).indexOf(o[0]) >= 0;
      input.addEventListener("change", function () {
        var chosen = Array.prototype.map.call(set.querySelectorAll("input:checked"), function (i) { return i.value; });
        choose(function (m) { onChange(m, chosen); });
      });
      group.appendChild(input);
      group.appendChild(el("label", { "class": "fr-label", "for": prefix + "-" + o[0] }, o[1]));
      item.appendChild(group);
      set.appendChild(item);
    });
    box.appendChild(set);
  }
  function note(words) { return box.appendChild(el("p", { "class": "fr-hint-text" }, words)); }

  function product(id) { return C.products.filter(function (p) { return p.id === id; })[0]; }
  function fieldsOf(p, types) {
    return (p ? p.fields : []).filter(function (f) { return !types || types.indexOf(f.type) >= 0; });
  }
  var DATES = ["date", "datetime"], NUMBERS = ["integer", "number"];
  function pairs(list) { return list.map(function (f) { return [f.name, f.title]; }); }
  function productChoices() { return C.products.map(function (p) { return [p.id, p.name]; }); }

  // --- entries: the filters of a feed, a map, a chart or a figure over the main courante ----
  function entryFilter() {
    var f = config().filter || {};
    function set(key) {
      return function (m, value) {
        m.config.filter = m.config.filter || {};
        if (value === "" || (Array.isArray(value) && !value.length)) delete m.config.filter[key];
        else m.config.filter[key] = key === "hours" ? Number(value) : value;
      };
    }
    select("reglage-periode", M.hours, C.hours, f.hours, set("hours"));
    checks("reglage-categories", M.categories, C.categories, f.categories, set("categories"));
    checks("reglage-gravites", M.severities, C.severities, f.severities, set("severities"));
    checks("reglage-statuts", M.statuses, C.statuses, f.statuses, set("statuses"));
  }

  // --- a source: the main courante or a product (charts and key figures) ----------------------
  function source(onProduct, onEntries) {
    var c = config();
    var options = [["entries", M.entries]].concat(productChoices());
    var value = c.source === "product" ? c.product_id : "entries";
    select("reglage-source", M.source, options, value, function (m, chosen) {
      if (chosen === "entries") {
        m.config = onEntries();
      } else {
        m.config = onProduct(product(chosen));
      }
    });
  }
  function measure() {
    var c = config(), p = product(c.product_id);
    var fn = c.measure === "count" || !c.measure ? "count" : c.measure.split(":")[0];
    var numeric = fieldsOf(p, NUMBERS);
    var offered = numeric.length ? C.aggregates : C.aggregates.slice(0, 1);
    select("reglage-mesure", M.measure, offered, fn, function (m, chosen) {
      var current = (m.config.measure || "").split(":")[1];
      var keep = numeric.some(function (f) { return f.name === current; });
      m.config.measure = chosen === "count" ? "count" : chosen + ":" + (keep ? current : numeric[0].name);
    });
    if (fn !== "count") {
      select("reglage-champ", M.measureField, pairs(numeric), c.measure.split(":")[1], function (m, chosen) {
        m.config.measure = fn + ":" + chosen;
      });
    }
  }

  function chartOfProduct(p, kind) {
    var dates = fieldsOf(p, DATES), texts = fieldsOf(p, ["string"]);
    var config = { source: "product", product_id: p.id, kind: kind || "bar", measure: "count" };
    if (dates.length) { config.group_by = dates[0].name; config.bucket = "day"; }
    else if (texts.length) config.group_by = texts[0].name;
    return config;
  }
  function chart() {
    var c = config();
    source(function (p) { return chartOfProduct(p, c.kind); },
           function () { return { kind: c.kind || "bar", group_by: "category", filter: { hours: 24 } }; });
    select("reglage-graphique", M.kind, C.kinds, c.kind || "bar", function (m, v) { m.config.kind = v; });
    if (c.source === "product") {
      var p = product(c.product_id);
      var usable = (p ? p.fields : []).filter(function (f) { return f.type !== "geometry"; });
      select("reglage-groupe", M.group, [["", M.none]].concat(pairs(usable)), c.group_by, function (m, v) {
        var f = usable.filter(function (x) { return x.name === v; })[0];
        if (v) m.config.group_by = v; else delete m.config.group_by;
        if (f && DATES.indexOf(f.type) >= 0) m.config.bucket = m.config.bucket || "day"; else delete m.config.bucket;
      });
      var grouped = usable.filter(function (x) { return x.name === c.group_by; })[0];
      if (grouped && DATES.indexOf(grouped.type) >= 0) {
        select("reglage-pas", M.bucket, C.buckets, c.bucket, function (m, v) { m.config.bucket = v; });
      }
      measure();
      select("reglage-series", M.series, [["", M.none]].concat(pairs(fieldsOf(p, ["string", "integer", "boolean"]))),
             c.series_by, function (m, v) { if (v) m.config.series_by = v; else delete m.config.series_by; });
    } else {
      select("reglage-groupe", M.group, C.entryGroups, c.group_by || "category", function (m, v) {
        m.config.group_by = v;
        if (v === "occurred_at") m.config.bucket = "hour";
        else { delete m.config.bucket; delete m.config.series_by; }
      });
      if (c.group_by === "occurred_at") {
        select("reglage-pas", M.bucket, C.buckets.slice(0, 3), c.bucket, function (m, v) { m.config.bucket = v; });
        var series = C.entryGroups.filter(function (g) { return g[0] !== "occurred_at"; });
        select("reglage-series", M.series, [["", M.none]].concat(series), c.series_by, function (m, v) {
          if (v) m.config.series_by = v; else delete m.config.series_by;
        });
      }
      entryFilter();
    }
  }

  function number(id, label, value, key) {
    var group = text(id, label, value, function (m, v) {
      if (v === "" || isNaN(Number(v))) delete m.config[key]; else m.config[key] = Number(v);
    }, { type: "number", inputmode: "decimal", "aria-describedby": "reglage-seuils-aide" });
    return group;
  }
  function kpi() {
    var c = config();
    source(function (p) { return { source: "product", product_id: p.id, measure: "count", unit: c.unit || "" }; },
           function () { return { filter: { hours: 24 } }; });
    if (c.source === "product") measure(); else entryFilter();
    number("reglage-orange", M.warning, c.warning, "warning");
    number("reglage-rouge", M.alert, c.alert, "alert");
    note(M.thresholdHint).id = "reglage-seuils-aide";
    var worse = el("div", { "class": "fr-checkbox-group fr-checkbox-group--sm fr-mb-2w" });
    var input = el("input", { type: "checkbox", id: "reglage-pire" });
    input.checked = c.higher_is_worse !== false;
    input.addEventListener("change", function () { choose(function (m) { m.config.higher_is_worse = input.checked; }); });
    worse.appendChild(input);
    worse.appendChild(el("label", { "class": "fr-label", "for": "reglage-pire" }, M.worse));
    box.appendChild(worse);
    text("reglage-unite", M.unit, c.unit, function (m, v) { m.config.unit = v; }, { maxlength: "120" });
  }

  function table() {
    var c = config(), p = product(c.product_id);
    select("reglage-produit", M.product, productChoices(), c.product_id, function (m, v) {
      m.config = { product_id: v };
    });
    checks("reglage-colonnes", M.columns, pairs(fieldsOf(p)), c.columns, function (m, chosen) {
      if (chosen.length) m.config.columns = chosen; else delete m.config.columns;
    });
    var sortable = pairs((p ? p.fields : []).filter(function (f) { return f.type !== "geometry"; }));
    select("reglage-tri", M.sort, [["", M.sortDefault]].concat(sortable), (c.sort || "").replace(/^-/, ""),
           function (m, v) { if (v) m.config.sort = v; else delete m.config.sort; });
    select("reglage-nombre", M.limit, [[10, "10"], [20, "20"], [50, "50"], [100, "100"]], c.limit || 20,
           function (m, v) { m.config.limit = Number(v); });
  }

  function links() {
    var list = config().links || [];
    list.forEach(function (link, i) {
      var n = i + 1;
      text("reglage-lien-titre-" + n, say(M.linkTitle, n), link.title, function (m, v) { m.config.links[i].title = v; },
           { maxlength: "120" });
      text("reglage-lien-adresse-" + n, say(M.linkUrl, n), link.url, function (m, v) { m.config.links[i].url = v; },
           { maxlength: "2000", inputmode: "url" });
      var drop = el("button", { type: "button", id: "reglage-lien-retirer-" + n,
                                "class": "fr-btn fr-btn--sm fr-btn--tertiary fr-mb-2w" }, say(M.removeLink, n));
      drop.addEventListener("click", function () { choose(function (m) { m.config.links.splice(i, 1); }); });
      box.appendChild(drop);
    });
    var more = el("button", { type: "button", id: "reglage-lien-ajouter",
                              "class": "fr-btn fr-btn--sm fr-btn--secondary fr-icon-add-line fr-btn--icon-left" }, M.addLink);
    more.addEventListener("click", function () {
      choose(function (m) { m.config.links = (m.config.links || []).concat([{ title: "Lien", url: "/" }]); });
    });
    box.appendChild(more);
  }
  function say(words, n) { return words.replace("%(n)s", n); }

  function form() {
    var c = config();
    var targets = [["entry", M.targetEntry]].concat(C.products.length ? [["product", M.targetProduct]] : []);
    select("reglage-cible", M.target, targets, c.target || "entry", function (m, v) {
      m.config = v === "product" ? { target: "product", product_id: C.products[0].id } : { target: "entry" };
    });
    if (c.target === "product") {
      select("reglage-produit", M.product, productChoices(), c.product_id, function (m, v) {
        m.config = { target: "product", product_id: v };
      });
      return;
    }
    var preset = c.preset || {};
    function keep(key) {
      return function (m, v) {
        m.config.preset = m.config.preset || {};
        if (v) m.config.preset[key] = v; else delete m.config.preset[key];
      };
    }
    select("reglage-categorie", M.presetCategory, [["", M.chosenByOfficer]].concat(C.categories), preset.category, keep("category"));
    select("reglage-gravite", M.presetSeverity, [["", M.chosenByOfficer]].concat(C.severities), preset.severity, keep("severity"));
  }

  var LIMITS = [[5, "5"], [10, "10"], [20, "20"], [50, "50"]];
  var BUILDERS = {
    feed: function () {
      entryFilter();
      select("reglage-nombre", M.limit, LIMITS, config().limit || 10, function (m, v) { m.config.limit = Number(v); });
    },
    map: function () {
      entryFilter();
      var group = el("div", { "class": "fr-checkbox-group fr-checkbox-group--sm" });
      var input = el("input", { type: "checkbox", id: "reglage-zones" });
      input.checked = config().zones !== false;
      input.addEventListener("change", function () { choose(function (m) { m.config.zones = input.checked; }); });
      group.appendChild(input);
      group.appendChild(el("label", { "class": "fr-label", "for": "reglage-zones" }, M.zones));
      box.appendChild(group);
    },
    table: table,
    chart: chart,
    kpi: kpi,
    text: function () {
      text("reglage-texte", M.markdown, config().markdown, function (m, v) { m.config.markdown = v; },
           { rows: "6", maxlength: "20000" });
    },
    links: links,
    form: form,
    synthesis: function () {},
    situations: function () {
      checks("reglage-statuts", M.statuses, C.statuses, config().statuses, function (m, chosen) { m.config.statuses = chosen; });
      select("reglage-nombre", M.limit, LIMITS, config().limit || 10, function (m, v) { m.config.limit = Number(v); });
    }
  };

  E.settings = function (target, module, choices) {
    box = target;
    C = choices;
    M = choices.messages;
    box.textContent = "";
    if (!module) return;
    text("reglage-titre", M.title, module.title, function (m, v) { m.title = v; }, { maxlength: "120" });
    var builder = BUILDERS[module.type];
    if (!builder) return;
    if (["table"].indexOf(module.type) >= 0 && !C.products.length) { note(M.noProduct); return; }
    builder();
  };
})();
