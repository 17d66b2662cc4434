// A small Markdown renderer for card details (CDS Hooks: `detail` is GitHub-flavoured Markdown).
// It covers what cards use: paragraphs, line breaks, headings, bullet and numbered lists, block
// quotes, **bold**, *italic*, `code` and [links](url). Text is escaped before any markup is made,
// and a link is kept only for http(s), a relative path or a fragment, so a card cannot inject HTML
// or script into the page.
"use strict";

(function (global) {
  function escapeHtml(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  function safeUrl(url) {
    const trimmed = url.trim();
    if (/^https?:\/\//i.test(trimmed) || /^[/#?]/.test(trimmed) || /^[\w.-]+(\/|$)/.test(trimmed) && !/^[\w.+-]+:/.test(trimmed)) {
      return trimmed;
    }
    return null;
  }

  // Inline markup on escaped text: code spans first (their content stays literal), then links,
  // bold, italic.
  function inline(text) {
    const codes = [];
    let html = escapeHtml(text).replace(/`([^`]+)`/g, function (_, code) {
      codes.push("<code>" + code + "</code>");
      return "\u0000" + (codes.length - 1) + "\u0000";
    });
    html = html.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, function (whole, label, url) {
      const safe = safeUrl(url.replace(/&amp;/g, "&"));
      return safe === null ? label : '<a href="' + escapeHtml(safe) + '" target="_blank" rel="noopener">' + label + "</a>";
    });
    html = html.replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>").replace(/__([^_]+)__/g, "<strong>$1</strong>");
    html = html.replace(/(^|[^*\w])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>").replace(/(^|[^_\w])_([^_\s][^_]*)_(?!\w)/g, "$1<em>$2</em>");
    return html.replace(/\u0000(\d+)\u0000/g, function (_, index) { return codes[Number(index)]; });
  }

  const BULLET = /^\s*[-*+]\s+(.*)$/;
  const NUMBERED = /^\s*\d+[.)]\s+(.*)$/;
  const HEADING = /^(#{1,6})\s+(.*)$/;
  const QUOTE = /^\s*>\s?(.*)$/;

  function render(markdown) {
    const lines = String(markdown || "").replace(/\r\n?/g, "\n").split("\n");
    const out = [];
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (!line.trim()) { i += 1; continue; }
      let match = HEADING.exec(line);
      if (match) {
        const level = Math.min(match[1].length + 3, 6);  // card headings sit under the summary
        out.push("<h" + level + ">" + inline(match[2]) + "</h" + level + ">");
        i += 1;
        continue;
      }
      for (const [pattern, tag] of [[BULLET, "ul"], [NUMBERED, "ol"]]) {
        if (pattern.test(line)) {
          const items = [];
          while (i < lines.length && pattern.test(lines[i])) {
            items.push("<li>" + inline(pattern.exec(lines[i])[1]) + "</li>");
            i += 1;
          }
          out.push("<" + tag + ">" + items.join("") + "</" + tag + ">");
          match = true;
          break;
        }
      }
      if (match) continue;
      if (QUOTE.test(line)) {
        const quoted = [];
        while (i < lines.length && QUOTE.test(lines[i])) { quoted.push(QUOTE.exec(lines[i])[1]); i += 1; }
        out.push("<blockquote>" + render(quoted.join("\n")) + "</blockquote>");
        continue;
      }
      // A paragraph runs to a blank line or another block; its single line breaks are kept
      // (cards put one fact per line).
      const paragraph = [];
      while (i < lines.length && lines[i].trim() && !HEADING.test(lines[i]) && !BULLET.test(lines[i])
             && !NUMBERED.test(lines[i]) && !QUOTE.test(lines[i])) {
        paragraph.push(inline(lines[i].trim()));
        i += 1;
      }
      out.push("<p>" + paragraph.join("<br>") + "</p>");
    }
    return out.join("\n");
  }

  global.Markdown = { render: render, escapeHtml: escapeHtml };
})(typeof window !== "undefined" ? window : globalThis);
