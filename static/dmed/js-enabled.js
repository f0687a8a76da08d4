// Run at the top of <body>, before it paints: NHS.UK frontend styles for a browser with scripts.
document.body.className += " js-enabled nhsuk-frontend-supported";
