/* Address search box (templates/_place_search.html): a WAI-ARIA 1.2 combobox with a listbox
   popup over GET /api/v1/places, and "My position" through the browser's geolocation.
   Choosing fills the lat/lon fields and dispatches "hv:place" (bubbling, from the box) with
   detail { lat, lon, name, kind } ("venue", "address" or "position"). */
(function () {
  "use strict";
  var DELAY = 200, LIMIT = 8;

  function fill(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (_, name) { return values[name]; });
  }

  function setup(box) {
    if (box.dataset.ready) return;
    box.dataset.ready = "1";
    var input = box.querySelector("[role=combobox]");
    var list = box.querySelector("[role=listbox]");
    var status = box.querySelector("[data-status]");
    var locate = box.querySelector("[data-locate]");
    var lat = document.querySelector(box.dataset.lat), lon = document.querySelector(box.dataset.lon);
    var items = [], active = -1, timer = null, pending = null, asked = "";

    function say(text) { status.textContent = text || ""; }

    function choose(place) {
      if (lat) lat.value = place.lat.toFixed(5);
      if (lon) lon.value = place.lon.toFixed(5);
      if (place.kind !== "position") input.value = place.name;
      close();
      box.dispatchEvent(new CustomEvent("hv:place", { bubbles: true, detail: place }));
    }

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function highlight(index) {
      var options = list.querySelectorAll("[role=option]");
      if (!options.length) return;
      active = (index + options.length) % options.length;
      options.forEach(function (option, i) { option.setAttribute("aria-selected", i === active ? "true" : "false"); });
      input.setAttribute("aria-activedescendant", options[active].id);
      options[active].scrollIntoView({ block: "nearest" });
    }

    function show(found) {
      items = found;
      list.textContent = "";
      found.forEach(function (place, i) {
        var option = document.createElement("li");
        option.id = input.id + "-option-" + i;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.className = "hv-place-search__option hv-place-search__option--" + place.kind;
        option.textContent = place.name;
        // mousedown, not click: the input keeps the focus (no blur closing the list first)
        option.addEventListener("mousedown", function (event) { event.preventDefault(); choose(place); });
        list.appendChild(option);
      });
      active = -1;
      input.removeAttribute("aria-activedescendant");
      list.hidden = !found.length;
      input.setAttribute("aria-expanded", found.length ? "true" : "false");
      say(found.length ? fill(box.dataset.found, { n: found.length }) : box.dataset.none);
    }

    function search() {
      var q = input.value.trim();
      if (q === asked) return;
      asked = q;
      if (pending) pending.abort();
      if (q.length < 2) { show([]); say(""); return; }
      pending = new AbortController();
      fetch("/api/v1/places?limit=" + LIMIT + "&q=" + encodeURIComponent(q), {
        credentials: "same-origin", signal: pending.signal, headers: { Accept: "application/json" }
      }).then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      }).then(function (body) {
        if (input.value.trim() === q) show(body.items);
      }).catch(function (error) {
        if (error.name !== "AbortError") { show([]); say(box.dataset.failed); }
      });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(search, DELAY);
    });
    input.addEventListener("keydown", function (event) {
      var open = !list.hidden;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (!open && items.length) { list.hidden = false; input.setAttribute("aria-expanded", "true"); }
        highlight(active + (event.key === "ArrowDown" ? 1 : (active < 0 ? 0 : -1)));
      } else if (event.key === "Enter") {
        event.preventDefault(); // never sends the form: an address half typed is not a place
        if (open && items.length) choose(items[active >= 0 ? active : 0]); // the first by default
        else { clearTimeout(timer); search(); }
      } else if (event.key === "Escape") {
        if (open) { event.preventDefault(); close(); } else if (input.value) { event.preventDefault(); input.value = ""; asked = ""; items = []; }
      } else if (event.key === "Tab" && open && active >= 0) {
        choose(items[active]);
      }
    });
    input.addEventListener("blur", function () { setTimeout(close, 100); });

    if (locate && navigator.geolocation && window.isSecureContext) {
      locate.hidden = false;
      locate.addEventListener("click", function () {
        say(box.dataset.locating);
        locate.disabled = true;
        navigator.geolocation.getCurrentPosition(function (position) {
          locate.disabled = false;
          var metres = Math.round(position.coords.accuracy || 0);
          var label = fill(box.dataset.located, { m: metres });
          choose({ lat: position.coords.latitude, lon: position.coords.longitude, name: label, kind: "position", accuracy: metres });
          say(label);
        }, function (error) {
          locate.disabled = false;
          say(error.code === 1 ? box.dataset.denied : box.dataset.unlocated);
        }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
      });
    }
    box.addEventListener("hv:place", function (event) {
      if (event.detail.kind !== "position") say(fill(box.dataset.chosen, { label: event.detail.name }));
    });
  }

  function init() { document.querySelectorAll("[data-place-search]").forEach(setup); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
  document.addEventListener("htmx:afterSwap", init);
})();
