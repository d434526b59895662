/* The stores page's map editor, an enhancement only (the page works without it): a problem's
   "Line N" link selects that line in the map's text box, and the first problem's line is
   selected when the page opens after a refused save. */
(function () {
  "use strict";

  function lineRange(text, line) {
    var lines = text.split("\n");
    var start = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) {
      start += lines[i].length + 1;
    }
    var current = lines[Math.min(line, lines.length) - 1] || "";
    return [start, start + current.length];
  }

  function selectLine(area, line) {
    var range = lineRange(area.value, line);
    area.focus();
    area.setSelectionRange(range[0], range[1]);
    var height = parseFloat(window.getComputedStyle(area).lineHeight) || 20;
    area.scrollTop = Math.max(0, (line - 3) * height);
    area.setAttribute("data-selected-line", String(line));
  }

  document.addEventListener("DOMContentLoaded", function () {
    var links = document.querySelectorAll("[data-map-line]");
    if (!links.length) {
      return;
    }
    var area = document.getElementById(links[0].getAttribute("href").slice(1));
    if (!area) {
      return;
    }
    links.forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        selectLine(area, parseInt(link.getAttribute("data-map-line"), 10));
      });
    });
    selectLine(area, parseInt(links[0].getAttribute("data-map-line"), 10));
  });
})();
