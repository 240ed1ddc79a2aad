// The tests' stand-in for a person at a browser: opens a URL and, page after page, submits
// the one form it finds (oidc-provider's development login with any user name and password,
// its consent, the device flow's code confirmation), following redirects and keeping the
// server's cookies, until a page has no form or a redirect leaves the server (the sign-in
// redirect to the tool's listener, which it then opens). Usage: node browser.mjs URL
// Exits non-zero on an HTTP error or after too many steps; says each step on stderr.

const start = new URL(process.argv[2]);
const cookies = new Map(); // name -> { value, path }, for the server's origin only

function cookieHeader(url) {
  return [...cookies.entries()]
    .filter(([, c]) => url.pathname.startsWith(c.path))
    .map(([name, c]) => `${name}=${c.value}`)
    .join('; ');
}

function keep(url, response) {
  for (const line of response.headers.getSetCookie()) {
    const [pair, ...attributes] = line.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    const pathAttribute = attributes.find((a) => a.toLowerCase().startsWith('path='));
    const path = pathAttribute ? pathAttribute.slice(5) : '/';
    const expired = attributes.some((a) => /^expires=thu, 01 jan 1970/i.test(a)) || value === '';
    const key = `${name}`;
    if (expired) cookies.delete(key);
    else cookies.set(key, { value, path });
  }
}

const unescape = (s) => s
  .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCharCode(parseInt(h, 16)))
  .replace(/&#(\d+);/g, (_, d) => String.fromCharCode(Number(d)))
  .replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>')
  .replace(/&amp;/g, '&');

function attributes(tag) {
  const out = {};
  for (const [, name, value] of tag.matchAll(/([\w-]+)="([^"]*)"/g)) out[name.toLowerCase()] = unescape(value);
  return out;
}

// The page's first form: where it goes and the fields a person would send.
function formOf(html) {
  const form = html.match(/<form\b([^>]*)>([\s\S]*?)<\/form>/i);
  if (!form) return undefined;
  const { action = '', method = 'get' } = attributes(form[1]);
  const fields = new URLSearchParams();
  for (const [tag] of form[2].matchAll(/<input\b[^>]*>/gi)) {
    const { name, value = '', type = 'text' } = attributes(tag);
    if (!name) continue;
    if (type === 'password') fields.append(name, value || 'any-password');
    else if (name === 'login') fields.append(name, value || 'flyte-user');
    else fields.append(name, value);
  }
  return { action, method: method.toLowerCase(), fields };
}

let url = start;
let request = { method: 'GET' };
for (let step = 0; step < 30; step += 1) {
  const sameOrigin = url.origin === start.origin;
  const headers = { ...(request.headers || {}) };
  if (sameOrigin && cookies.size) headers.cookie = cookieHeader(url);
  console.error(`browser: ${request.method} ${url.origin}${url.pathname}`);
  const response = await fetch(url, { ...request, headers, redirect: 'manual' });
  if (sameOrigin) keep(url, response);
  if (response.status >= 300 && response.status < 400) {
    url = new URL(response.headers.get('location'), url);
    request = { method: 'GET' };
    continue;
  }
  const body = await response.text();
  if (response.status >= 400) {
    console.error(`browser: HTTP ${response.status} at ${url.pathname}: ${body.replace(/<[^>]*>/g, ' ').trim().slice(0, 300)}`);
    process.exit(1);
  }
  if (!sameOrigin) process.exit(0); // the tool's listener answered the redirect
  const form = formOf(body);
  if (!form) {
    console.error(`browser: done: ${body.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200)}`);
    process.exit(0);
  }
  const target = new URL(form.action || url.href, url);
  if (form.method === 'post') {
    url = target;
    request = {
      method: 'POST',
      body: form.fields.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    };
  } else {
    for (const [k, v] of form.fields) target.searchParams.append(k, v);
    url = target;
    request = { method: 'GET' };
  }
}
console.error('browser: too many steps');
process.exit(1);
