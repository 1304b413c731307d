// ZLIB (RFC 1950) inflation with a cap on what comes out, for the two things this page
// inflates: a printed card's Claim 169 payload and a status list's `lst`. The browser's
// DecompressionStream does the work; the cap stops a ZLIB bomb before it fills a cheap
// phone's memory. Each caller turns these errors into its own (Malformed, StatusListError).

export class InflateError extends Error {}
export class TooBig extends InflateError {}

export async function inflateCapped(compressed, maxBytes) {
  const reader = new Blob([compressed]).stream().pipeThrough(new DecompressionStream("deflate")).getReader();
  const chunks = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxBytes) {
        reader.cancel().catch(() => {});
        throw new TooBig(`inflates past ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof TooBig) throw e;
    throw new InflateError("not valid ZLIB data: corrupt, truncated or followed by bytes");
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.length; }
  return out;
}
