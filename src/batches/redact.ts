// Origins can carry credentials (https://user:token@host/...) and signed query strings; neither may reach a
// log line, an error message or a dead-letter header. Every message that names an origin uses this form.

/** The origin without userinfo, query or fragment: scheme, host, port and path, with markers where cut. */
export function redactOrigin(origin: string): string {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    // Not a URL: drop anything that looks like userinfo, and cut at the first `?` or `#`.
    const cut = origin.replace(/\/\/[^/@?#]*@/, '//***@');
    const q = cut.search(/[?#]/);
    return q >= 0 ? `${cut.slice(0, q)}?…` : cut;
  }
  if (url.protocol === 'file:') return `file://${url.pathname}`;
  const auth = url.username !== '' || url.password !== '' ? '***@' : '';
  const rest = url.search !== '' || url.hash !== '' ? '?…' : '';
  return `${url.protocol}//${auth}${url.host}${url.pathname}${rest}`;
}
