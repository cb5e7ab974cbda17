/* New entry: "Prendre une photo" opens the phone's camera (a file input with
   capture="environment"); the photo taken joins the files already chosen in #files, so the
   form sends them all in one upload. Without this script the camera input is simply not
   offered (the file picker of #files still reaches the camera on a phone). */
(function () {
  "use strict";
  var button = document.getElementById("prendre-photo");
  var camera = document.getElementById("photo");
  var files = document.getElementById("files");
  if (!button || !camera || !files || typeof DataTransfer === "undefined") return;
  button.hidden = false;
  button.addEventListener("click", function () { camera.click(); });
  camera.addEventListener("change", function () {
    if (!camera.files || !camera.files.length) return;
    var merged = new DataTransfer();
    Array.prototype.forEach.call(files.files, function (f) { merged.items.add(f); });
    Array.prototype.forEach.call(camera.files, function (f) { merged.items.add(f); });
    files.files = merged.files;
    camera.value = "";  // sent once, with the others
    files.dispatchEvent(new Event("change", { bubbles: true }));  // the list of chosen files
  });
})();
