// Math in the pages ($...$, $$...$$) through pymdownx.arithmatex; load MathJax 3 from your own copy or a CDN
// (the built site does not fetch it at build time).
window.MathJax = {
  tex: { inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true },
  options: { ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex" },
};
