// ebb dashboard: live regions pause while the tab is hidden.
//
// The htmx SSE extension keeps an EventSource open for each element with
// `sse-connect`. While the tab is hidden nobody reads the figures, so each
// source is closed (the extension closes it on htmx:beforeCleanupElement)
// and the server's refreshers stop once no page watches them. On return a
// fresh copy of the element is processed by htmx, which opens a new
// source; the server's first event brings the figures up to date at once.
(function () {
  "use strict";

  function pause() {
    document.querySelectorAll("[sse-connect]").forEach(function (element) {
      htmx.trigger(element, "htmx:beforeCleanupElement");
      element.setAttribute("data-paused-sse", element.getAttribute("sse-connect"));
      element.removeAttribute("sse-connect");
    });
  }

  function resume() {
    document.querySelectorAll("[data-paused-sse]").forEach(function (element) {
      var fresh = element.cloneNode(true);
      fresh.setAttribute("sse-connect", element.getAttribute("data-paused-sse"));
      fresh.removeAttribute("data-paused-sse");
      element.replaceWith(fresh);
      htmx.process(fresh);
    });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      pause();
    } else {
      resume();
    }
  });

  // A live region says whether it is connected, for the eye.
  document.addEventListener("htmx:sseOpen", function (event) {
    event.target.classList.add("connected");
  });
  document.addEventListener("htmx:sseError", function (event) {
    event.target.classList.remove("connected");
  });
  document.addEventListener("htmx:sseClose", function (event) {
    event.target.classList.remove("connected");
  });
})();
