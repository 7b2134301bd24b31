// A CI log viewer: ANSI colours as HTML, GitLab sections and GitHub groups collapsible, line
// numbers (a line ends at \r\n, a lone \r or \n: the triage's rule, so its line numbers and
// the analysis's evidence lines point at the same lines), search, and highlighted ranges.
import { h } from './common.js';

const ESCAPE = /\x1b(?:\[([0-9;?]*)([A-Za-z])|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][A-Za-z0-9]|[=>78])/g;

/** Splits a line into styled runs: [{text, classes, color, background}]. `state` carries the
 *  style from line to line, as terminals do. */
export function ansiRuns(line, state) {
  const runs = [];
  let last = 0;
  ESCAPE.lastIndex = 0;
  for (let match; (match = ESCAPE.exec(line));) {
    if (match.index > last) runs.push({ text: line.slice(last, match.index), ...snapshot(state) });
    last = ESCAPE.lastIndex;
    if (match[2] === 'm') applySgr(state, match[1]);
  }
  if (last < line.length) runs.push({ text: line.slice(last), ...snapshot(state) });
  return runs;
}

export function plainText(line) {
  return line.replace(ESCAPE, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
}

export function newStyle() {
  return { bold: false, italic: false, underline: false, fg: null, bg: null };
}

function snapshot(state) {
  return { bold: state.bold, italic: state.italic, underline: state.underline, fg: state.fg, bg: state.bg };
}

const CUBE = [0, 95, 135, 175, 215, 255];

function color256(n) {
  if (n < 16) return { index: n };
  if (n >= 232) {
    const grey = 8 + (n - 232) * 10;
    return { rgb: `rgb(${grey},${grey},${grey})` };
  }
  const v = n - 16;
  return { rgb: `rgb(${CUBE[Math.floor(v / 36)]},${CUBE[Math.floor(v / 6) % 6]},${CUBE[v % 6]})` };
}

function applySgr(state, params) {
  const codes = params === '' ? [0] : params.split(';').map((p) => Number(p || 0));
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i];
    if (code === 0) Object.assign(state, newStyle());
    else if (code === 1) state.bold = true;
    else if (code === 3) state.italic = true;
    else if (code === 4) state.underline = true;
    else if (code === 22) state.bold = false;
    else if (code === 23) state.italic = false;
    else if (code === 24) state.underline = false;
    else if (code >= 30 && code <= 37) state.fg = { index: code - 30 };
    else if (code >= 90 && code <= 97) state.fg = { index: code - 90 + 8 };
    else if (code === 39) state.fg = null;
    else if (code >= 40 && code <= 47) state.bg = { index: code - 40 };
    else if (code >= 100 && code <= 107) state.bg = { index: code - 100 };
    else if (code === 49) state.bg = null;
    else if ((code === 38 || code === 48) && codes[i + 1] === 5) {
      const colour = color256(codes[i + 2] ?? 0);
      if (code === 38) state.fg = colour; else state.bg = colour.index !== undefined ? { index: colour.index % 8 } : colour;
      i += 2;
    } else if ((code === 38 || code === 48) && codes[i + 1] === 2) {
      const colour = { rgb: `rgb(${codes[i + 2] ?? 0},${codes[i + 3] ?? 0},${codes[i + 4] ?? 0})` };
      if (code === 38) state.fg = colour; else state.bg = colour;
      i += 4;
    }
  }
}

function renderRuns(runs) {
  const fragment = document.createDocumentFragment();
  for (const run of runs) {
    if (!run.text) continue;
    const text = run.text.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
    if (!run.bold && !run.italic && !run.underline && !run.fg && !run.bg) {
      fragment.append(text);
      continue;
    }
    const span = document.createElement('span');
    const classes = [];
    if (run.bold) classes.push('a-b');
    if (run.italic) classes.push('a-i');
    if (run.underline) classes.push('a-u');
    if (run.fg?.index !== undefined) classes.push(`f${run.fg.index}`);
    else if (run.fg?.rgb) span.style.color = run.fg.rgb;
    if (run.bg?.index !== undefined) classes.push(`b${run.bg.index}`);
    else if (run.bg?.rgb) span.style.backgroundColor = run.bg.rgb;
    if (classes.length) span.className = classes.join(' ');
    span.textContent = text;
    fragment.append(span);
  }
  return fragment;
}

/** The log's lines, by the triage's rule; a final line break ends the last line. */
export function splitLines(text) {
  const lines = text.split(/\r\n|\r|\n/);
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

const GITLAB_START = /^section_start:(\d+):([^\s[]+)(?:\[([^\]]*)\])?/;
const GITLAB_END = /^section_end:(\d+):(\S+)/;
const GITHUB_START = /^(?:\d{4}-\d\d-\d\dT[\d:.]+Z )?##\[group\](.*)$/;
const GITHUB_END = /^(?:\d{4}-\d\d-\d\dT[\d:.]+Z )?##\[endgroup\]/;

/**
 * Renders `text` into `container`. `highlight` holds ranges [{start_line, end_line}] to mark.
 * Returns the viewer: `lines` (plain text of each), `reveal(n)` (opens the sections around
 * line n, scrolls to it and marks it), `expandAll(open)`.
 */
export function renderLog(container, text, highlight = []) {
  const lines = splitLines(text);
  const plain = new Array(lines.length);
  const rows = new Array(lines.length);
  const sectionOf = new Array(lines.length);
  const sections = [];
  const highlighted = (n) => highlight.some((range) => n >= range.start_line && n <= range.end_line);
  const root = document.createDocumentFragment();
  const stack = [{ body: root, section: null }];
  const style = newStyle();

  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const line = lines[i];
    const visible = plainText(line);
    plain[i] = visible;
    const start = GITLAB_START.exec(visible) ?? (GITHUB_START.test(visible) ? [visible, null, GITHUB_START.exec(visible)[1], ''] : null);
    const end = GITLAB_END.exec(visible) ?? (GITHUB_END.test(visible) ? [visible] : null);
    const row = h('div', { class: highlighted(n) ? 'ln hl' : 'ln', id: `L${n}` },
      h('a', { class: 'no', href: `#L${n}`, 'aria-label': `line ${n}` }, String(n)));
    rows[i] = row;
    const parent = stack[stack.length - 1];
    sectionOf[i] = parent.section;

    if (start) {
      const [, startedAt, name, options] = start;
      const section = { name, startedAt: Number(startedAt), head: row, body: null, parent: parent.section, first: n, last: n, collapsed: /collapsed=true/.test(options ?? '') };
      const toggle = h('button', { type: 'button', 'aria-expanded': 'true' }, `▾ ${name.replace(/^step_script$/, 'script')}`);
      const label = h('span', { class: 'tx' }, toggle);
      row.classList.add('section-head');
      row.append(label);
      section.toggle = toggle;
      section.body = h('div', { class: 'section-body' });
      toggle.addEventListener('click', () => setOpen(section, section.body.hidden));
      parent.body.append(row, section.body);
      sections.push(section);
      stack.push({ body: section.body, section });
      continue;
    }
    // A section's end marker is bookkeeping, not output: its line stays, empty.
    row.append(h('span', { class: 'tx' }, end ? '' : renderRuns(ansiRuns(line, style))));
    parent.body.append(row);
    if (end && stack.length > 1) {
      const closed = stack.pop().section;
      closed.last = n;
      const endedAt = end[1] ? Number(end[1]) : null;
      if (endedAt && closed.startedAt) {
        closed.toggle.append(h('span', { class: 'dur' }, `${Math.max(0, endedAt - closed.startedAt)}s`));
      }
    }
  }
  for (const open of stack.slice(1)) open.section.last = lines.length;

  function setOpen(section, open) {
    section.body.hidden = !open;
    section.toggle.setAttribute('aria-expanded', String(open));
    section.toggle.firstChild.textContent = section.toggle.firstChild.textContent.replace(/^[▾▸]/, open ? '▾' : '▸');
  }

  // Sections start collapsed when GitLab says so, or when the log has highlighted lines
  // and the section holds none of them: the excerpt is what the reader came for.
  for (const section of sections) {
    let holdsHighlight = false;
    for (let n = section.first; n <= section.last && !holdsHighlight; n++) holdsHighlight = highlighted(n);
    if (section.collapsed || (highlight.length > 0 && !holdsHighlight)) setOpen(section, false);
  }

  container.replaceChildren(root);

  function openAround(index) {
    for (let section = sectionOf[index]; section; section = section.parent) setOpen(section, true);
  }

  return {
    lines: plain,
    rows,
    count: lines.length,
    reveal(n, { mark = true, block = 'center' } = {}) {
      const index = n - 1;
      if (index < 0 || index >= rows.length) return;
      openAround(index);
      if (mark) {
        container.querySelectorAll('.ln.target').forEach((row) => row.classList.remove('target'));
        rows[index].classList.add('target');
      }
      // Scroll the log itself, not the page around it.
      const row = rows[index];
      const offset = block === 'center' ? (container.clientHeight - row.offsetHeight) / 2 : 8;
      container.scrollTop = Math.max(0, row.offsetTop - offset);
    },
    open(index) { openAround(index); },
    expandAll(open) { for (const section of sections) setOpen(section, open); },
    hasSections: sections.length > 0,
  };
}

/** Search over the viewer's lines: marks matching lines, steps through them. */
export function attachSearch(viewer, input, counter, previous, next) {
  let matches = [];
  let current = -1;
  let timer = null;

  function show() {
    viewer.rows.forEach((row) => row.classList.remove('current'));
    if (current >= 0 && matches.length) {
      const index = matches[current];
      viewer.reveal(index + 1, { mark: false });
      viewer.rows[index].classList.add('current');
      counter.textContent = `${current + 1} of ${matches.length}`;
    } else {
      counter.textContent = input.value ? 'no match' : '';
    }
  }

  function search() {
    for (const index of matches) viewer.rows[index].classList.remove('match', 'current');
    const wanted = input.value.trim().toLowerCase();
    matches = [];
    if (wanted) {
      viewer.lines.forEach((line, index) => { if (line.toLowerCase().includes(wanted)) matches.push(index); });
      for (const index of matches) viewer.rows[index].classList.add('match');
    }
    current = matches.length ? 0 : -1;
    show();
  }

  function step(by) {
    if (!matches.length) return;
    current = (current + by + matches.length) % matches.length;
    show();
  }

  input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(search, 200); });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') { event.preventDefault(); clearTimeout(timer); if (!matches.length) search(); else step(event.shiftKey ? -1 : 1); }
  });
  previous.addEventListener('click', () => step(-1));
  next.addEventListener('click', () => step(1));
}
