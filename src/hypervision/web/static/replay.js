/* The map page's replay slider: from N hours ago (left) to now (right), its two ends labelled,
   the chosen time said as the slider moves (shown and as aria-valuetext), and a play/pause
   button that advances it hour by hour. It tells the map the chosen time with a `hv:replay`
   event on the document: detail.until is an ISO time, or "" for the live view. */
(function () {
  "use strict";
  var slider = document.getElementById("rejouer");
  if (!slider) return;
  var said = document.getElementById("rejouer-texte");
  var start = document.getElementById("rejouer-debut");
  var end = document.getElementById("rejouer-fin");
  var button = document.getElementById("rejouer-lecture");
  var locale = document.documentElement.lang || "fr";
  var HOUR = 3600 * 1000;
  var TICK_MS = 700;
  var format = new Intl.DateTimeFormat(locale, {
    weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit"
  });
  var short = new Intl.DateTimeFormat(locale, {
    weekday: "short", day: "numeric", hour: "2-digit", minute: "2-digit"
  });
  var max = parseInt(slider.max, 10);
  var sent = null;
  var timer = null;

  function hoursAgo() { return max - parseInt(slider.value, 10); }

  function show() {
    var now = Date.now();
    var ago = hoursAgo();
    var text = slider.dataset.now;
    if (ago) {
      text = format.format(new Date(now - ago * HOUR)) + " (" + slider.dataset.ago.replace("%(h)s", ago) + ")";
    }
    said.textContent = text;
    slider.setAttribute("aria-valuetext", text);
    if (start) start.textContent = short.format(new Date(now - max * HOUR));
    if (end) end.textContent = slider.dataset.now;
    var until = ago ? new Date(now - ago * HOUR).toISOString() : "";
    if (until !== sent) {
      sent = until;
      document.dispatchEvent(new CustomEvent("hv:replay", { detail: { until: until, hoursAgo: ago } }));
    }
  }

  function label(playing) {
    button.textContent = playing ? button.dataset.pause : button.dataset.play;
    button.classList.toggle("fr-icon-pause-circle-line", playing);
    button.classList.toggle("fr-icon-play-circle-line", !playing);
    button.setAttribute("data-playing", playing ? "1" : "0");
  }
  function pause() {
    if (timer === null) return;
    clearInterval(timer);
    timer = null;
    label(false);
  }
  function play() {
    if (hoursAgo() === 0) { slider.value = "0"; show(); }  // at now: play from the start
    label(true);
    timer = setInterval(function () {
      slider.value = String(parseInt(slider.value, 10) + 1);
      show();
      if (hoursAgo() === 0) pause();
    }, TICK_MS);
  }

  slider.addEventListener("input", show);
  // Moving the slider by hand (mouse, touch or keys) takes over from playing.
  slider.addEventListener("pointerdown", pause);
  slider.addEventListener("keydown", pause);
  if (button) {
    button.hidden = false;
    label(false);
    button.addEventListener("click", function () { if (timer === null) play(); else pause(); });
  }
  show();
})();
