// Small progressive enhancements; every form works without them.
document.addEventListener("DOMContentLoaded", function () {
  // The NHS error summary takes focus, as the design system says.
  var summary = document.querySelector(".nhsuk-error-summary");
  if (summary) { summary.focus(); }
  // The token page's Print button (no inline handler: the Content-Security-Policy allows none).
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
});
