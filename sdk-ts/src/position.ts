/** Positions (`<LSN>:<index>`) and LSNs (`X/Y`), compared as the server orders them. */

const MAX_INDEX = 0xffffffffn;

/** Parses `X/Y` into a number; null if malformed. */
export function parseLsn(lsn: string): bigint | null {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn.trim());
  if (!m) return null;
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** Parses a position (or a bare LSN, meaning after everything at it) into a sortable pair; null if malformed. */
export function parsePosition(pos: string): [bigint, bigint] | null {
  const i = pos.indexOf(':');
  const lsn = parseLsn(i < 0 ? pos : pos.slice(0, i));
  if (lsn === null) return null;
  if (i < 0) return [lsn, MAX_INDEX];
  const idx = pos.slice(i + 1);
  if (!/^\d{1,10}$/.test(idx)) return null;
  return [lsn, BigInt(idx)];
}

/** Orders two positions: negative, zero or positive; null when either is malformed. */
export function comparePositions(a: string, b: string): number | null {
  const pa = parsePosition(a);
  const pb = parsePosition(b);
  if (!pa || !pb) return null;
  if (pa[0] !== pb[0]) return pa[0] < pb[0] ? -1 : 1;
  return pa[1] === pb[1] ? 0 : pa[1] < pb[1] ? -1 : 1;
}

/** Orders two LSNs; null when either is malformed. */
export function compareLsns(a: string, b: string): number | null {
  const la = parseLsn(a);
  const lb = parseLsn(b);
  if (la === null || lb === null) return null;
  return la === lb ? 0 : la < lb ? -1 : 1;
}
