// What every page shares: building elements, calling the API with the session cookie,
// statuses (icon + word, never colour alone), durations and times in the viewer's zone.

/** Makes an element: h('a', {href: '/'}, 'text', child). Attributes whose name starts with
 *  `on` become listeners; `class` and `text` are shorthands. Children may be nested arrays. */
export function h(tag, attrs, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'text') el.textContent = value;
    else if (name === 'class') el.setAttribute('class', value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces a container's content. */
export function fill(container, ...children) {
  container.replaceChildren();
  append(container, children);
}

export class ApiFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls the API (the session cookie goes along by itself). A refused session sends the
 *  viewer to the sign-in form; other errors are thrown with the API's message. */
export async function api(path, options = {}) {
  const init = { ...options, headers: { Accept: 'application/json', ...(options.headers ?? {}) } };
  if (options.json !== undefined) {
    init.method = init.method ?? 'POST';
    init.body = JSON.stringify(options.json);
    init.headers['Content-Type'] = 'application/json';
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiFailure(0, 'The service did not answer (network error). Check your connection and try again.');
  }
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (response.status === 401) {
    signInAgain();
    throw new ApiFailure(401, body?.error ?? 'Your session has ended; sign in again.');
  }
  if (!response.ok) {
    throw new ApiFailure(response.status, body?.error ?? `The service answered ${response.status}.`);
  }
  return { status: response.status, body };
}

/** To the sign-in form, coming back here afterwards. */
export function signInAgain() {
  const next = location.pathname + location.search + location.hash;
  location.assign('/?next=' + encodeURIComponent(next));
}

const STATUSES = {
  success: { icon: '✓', word: 'passed' },
  failed: { icon: '✕', word: 'failed' },
  running: { icon: '▶', word: 'running' },
  pending: { icon: '…', word: 'pending' },
  manual: { icon: '⏸', word: 'manual' },
  canceled: { icon: '⊘', word: 'canceled' },
  skipped: { icon: '»', word: 'skipped' },
  unknown: { icon: '?', word: 'unknown' },
};

const ALIASES = {
  success: 'success', passed: 'success', succeeded: 'success', ok: 'success',
  failure: 'failed', failed: 'failed', error: 'failed', errored: 'failed', timed_out: 'failed',
  running: 'running', in_progress: 'running', started: 'running',
  pending: 'pending', queued: 'pending', created: 'pending', waiting: 'pending',
  waiting_for_resource: 'pending', preparing: 'pending', scheduled: 'pending', requested: 'pending',
  manual: 'manual', canceled: 'canceled', cancelled: 'canceled', skipped: 'skipped',
};

/** One status vocabulary for our words (SUCCESS) and GitLab's (success, failed). */
export function statusKey(raw) {
  return ALIASES[String(raw ?? '').toLowerCase()] ?? 'unknown';
}

export function statusWord(raw) {
  return STATUSES[statusKey(raw)].word;
}

/** A status as a badge: icon and word. */
export function badge(raw) {
  const key = statusKey(raw);
  const { icon, word } = STATUSES[key];
  return h('span', { class: `status s-${key}` }, h('span', { class: 'icon', 'aria-hidden': 'true' }, icon), word);
}

/** A compact status mark (icon only, the word in its accessible name and tooltip). */
export function mark(raw, title, href) {
  const key = statusKey(raw);
  const { icon, word } = STATUSES[key];
  const label = `${word}: ${title}`;
  return h(href ? 'a' : 'span', { class: `mark s-${key}`, href, title: label, 'aria-label': label, role: href ? null : 'img' }, icon);
}

/** Seconds as `1h 02m`, `3m 07s` or `12s`. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(Number(seconds))) return '—';
  let s = Math.round(Number(seconds));
  if (s < 60) return `${s}s`;
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  s %= 60;
  if (hours) return minutes ? `${hours}h ${String(minutes).padStart(2, '0')}m` : `${hours}h`;
  return s ? `${minutes}m ${String(s).padStart(2, '0')}s` : `${minutes}m`;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** A time in the viewer's time zone. */
export function localTime(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : dateTime.format(date);
}

/** `5 minutes ago`, with the full local time as its tooltip. */
export function ago(iso) {
  if (!iso) return h('span', {}, '—');
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h('span', {}, String(iso));
  const seconds = (date.getTime() - Date.now()) / 1000;
  const steps = [[60, 'second'], [3600, 'minute'], [86400, 'hour'], [604800, 'day'], [Infinity, 'week']];
  let text = '';
  let size = 1;
  for (const [limit, unit] of steps) {
    if (Math.abs(seconds) < limit) {
      text = relative.format(Math.round(seconds / size), unit);
      break;
    }
    size = limit;
  }
  return h('time', { datetime: date.toISOString(), title: dateTime.format(date) }, text);
}

export function percent(value) {
  return value === null || value === undefined ? '—' : `${Number(value).toFixed(1).replace(/\.0$/, '')}%`;
}

export function shortSha(sha) {
  return sha ? String(sha).slice(0, 8) : '';
}

/** A link to one of the dashboard's pages. */
export function pageUrl(page, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(name, String(value));
  }
  return `/${page}?${query}`;
}

export function param(name) {
  return new URLSearchParams(location.search).get(name) ?? '';
}

/** A message in place of content that could not be loaded. */
export function failure(container, error, what) {
  fill(container, h('p', { class: 'error', role: 'alert' }, `${what}: ${error.message}`));
}

/** A small stored preference (the page's own choices when the service keeps none). */
export function remembered(name, fallback) {
  try { return localStorage.getItem(`buildlore.${name}`) ?? fallback; } catch { return fallback; }
}

export function remember(name, value) {
  try { localStorage.setItem(`buildlore.${name}`, value); } catch { /* private mode */ }
}

/** A person's avatar through the service (`/api/avatar`: nothing is loaded from another
 *  origin), or their initials when there is none or it cannot be shown. */
export function avatar(person) {
  const name = person?.name || person?.username || '?';
  const initials = name.split(/[\s._-]+/).filter(Boolean).slice(0, 2).map((part) => part[0].toUpperCase()).join('');
  const fallback = h('span', { class: 'avatar', 'aria-hidden': 'true' }, initials || '?');
  if (!person?.avatar_url) return fallback;
  const image = h('img', { class: 'avatar', alt: '', width: 24, height: 24, src: `/api/avatar?url=${encodeURIComponent(person.avatar_url)}` });
  image.addEventListener('error', () => image.replaceWith(fallback));
  return image;
}

/** The query string naming a job for the AI and trace routes. */
export function jobQuery(provider, project, jobId) {
  const query = new URLSearchParams();
  if (provider === 'github') {
    query.set('provider', 'github');
    query.set('repo', project);
  } else {
    if (provider && provider !== 'gitlab') query.set('provider', provider);
    query.set('projectId', project);
  }
  query.set('jobId', jobId);
  return query;
}
