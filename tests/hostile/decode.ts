/** Readings of command output under which a secret printed through an encoder shows again. Pure. */

// ---------------------------------------------------------------------------------------------------
// Decoding re-encoded output
// ---------------------------------------------------------------------------------------------------

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32Decode(s: string): Buffer {
  const clean = s.toUpperCase().replace(/[^A-Z2-7]/g, '');
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const c of clean) {
    value = (value << 5) | B32.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/**
 * Readings of a piece of output under which a secret printed through an encoder would show again:
 * as is, without whitespace (wrapped lines), base64 and base32 with whitespace and line breaks removed
 * (at every alignment, in case something before it was cut out), hex dumps (`xxd`, `xxd -p`, `od`)
 * including xxd's character column, and UTF-16 (NUL bytes dropped).
 */
export function decodedViews(section: Buffer): Array<{ how: string; text: string }> {
  const text = section.toString('latin1');
  const views: Array<{ how: string; text: string }> = [
    { how: 'as is', text },
    { how: 'without whitespace', text: text.replace(/\s+/g, '') },
    { how: 'without NUL bytes (UTF-16)', text: text.replace(/\0/g, '') },
  ];
  const b64 = text.replace(/[^A-Za-z0-9+/]/g, '');
  for (let o = 0; o < 4; o++) views.push({ how: `base64 (offset ${o})`, text: Buffer.from(b64.slice(o), 'base64').toString('latin1') });
  const b32 = text.toUpperCase().replace(/[^A-Z2-7]/g, '');
  for (let o = 0; o < 8; o++) views.push({ how: `base32 (offset ${o})`, text: base32Decode(b32.slice(o)).toString('latin1') });
  // Hex dumps: drop xxd/od offsets, keep the hex digits of each line (xxd's character column aside).
  const hexLines: string[] = [];
  const charColumn: string[] = [];
  for (const line of text.split('\n')) {
    const xxd = /^[0-9a-f]{6,8}:\s((?:[0-9a-f]{2,4}\s?)+)\s{2,}(.*)$/.exec(line);
    if (xxd) {
      hexLines.push(xxd[1]!);
      charColumn.push(xxd[2]!);
      continue;
    }
    const od = /^[0-7]{7}\s+((?:[0-9a-f]{2}\s*)+)$/.exec(line);
    if (od) hexLines.push(od[1]!);
    else if (/^[0-9a-fA-F\s]+$/.test(line)) hexLines.push(line);
  }
  const hex = hexLines.join('').replace(/[^0-9a-fA-F]/g, '');
  for (let o = 0; o < 2; o++)
    views.push({ how: `hex (offset ${o})`, text: Buffer.from(hex.slice(o).replace(/^((?:..)*).?$/, '$1'), 'hex').toString('latin1') });
  views.push({ how: 'xxd character column', text: charColumn.join('') });
  const utf16 = Buffer.from(text.replace(/[^\0-\xff]/g, ''), 'latin1');
  for (let o = 0; o < 2; o++) views.push({ how: `UTF-16LE (offset ${o})`, text: utf16.subarray(o).toString('utf16le') });
  return views;
}

/** Sections of output between `==<name>==` and `==end==` lines. */
export function sections(out: Buffer, names: string[]): Record<string, Buffer> {
  const s = out.toString('latin1');
  const res: Record<string, Buffer> = {};
  for (const n of names) {
    const start = s.indexOf(`==${n}==\n`);
    if (start < 0) continue;
    const from = start + n.length + 5;
    const end = s.indexOf('==end==', from);
    res[n] = Buffer.from(s.slice(from, end < 0 ? undefined : end), 'latin1');
  }
  return res;
}
