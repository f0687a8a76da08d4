// Small progressive enhancements; every form works without them.
document.addEventListener("DOMContentLoaded", function () {
  // The NHS error summary takes focus, as the design system says.
  var summary = document.querySelector(".nhsuk-error-summary");
  if (summary) { summary.focus(); }
});
