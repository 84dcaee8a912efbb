import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

// scrypt cost parameters: N = 2^15, r = 8 takes 32 MiB and about 0.1 s per hash (an estimate
// for a current server core), which makes guessing offline expensive. Each hash stores its own
// parameters, so that raising them later keeps old hashes verifiable.
const COST = 2 ** 15;
const BLOCK_SIZE = 8;
const PARALLELIZATION = 1;
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
// Parameters above these in a stored hash are rejected rather than run, so that a tampered
// row cannot make one login take gigabytes.
const MAX_COST = 2 ** 20;
const MAX_MEMORY = 256 * 1024 * 1024;

export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 1024;

function deriveKey(
  password: string,
  salt: Buffer,
  options: ScryptOptions,
  length: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(
      password.normalize('NFC'),
      salt,
      length,
      { ...options, maxmem: MAX_MEMORY },
      (error, key) => (error ? reject(error) : resolve(key)),
    );
  });
}

/** Hashes a password with scrypt and a random salt, as `scrypt$N$r$p$salt$hash` (base64). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const options = { N: COST, r: BLOCK_SIZE, p: PARALLELIZATION };
  const key = await deriveKey(password, salt, options, KEY_LENGTH);
  return [
    'scrypt',
    COST,
    BLOCK_SIZE,
    PARALLELIZATION,
    salt.toString('base64'),
    key.toString('base64'),
  ].join('$');
}

/** True when the password matches the stored hash; false for a malformed hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  if (![N, r, p].every(Number.isInteger) || N > MAX_COST || r > 32 || p > 16) return false;
  const salt = Buffer.from(parts[4], 'base64');
  const expected = Buffer.from(parts[5], 'base64');
  if (expected.length === 0) return false;
  const key = await deriveKey(password, salt, { N, r, p }, expected.length);
  return timingSafeEqual(key, expected);
}

// A hash of a random password, verified when the user name is unknown, so that a login for a
// missing user takes as long as one with a wrong password and does not reveal which names exist.
let decoyHash: Promise<string> | null = null;

export function decoyPasswordHash(): Promise<string> {
  decoyHash ??= hashPassword(randomBytes(18).toString('base64url'));
  return decoyHash;
}

/** Generates a random 24-character password for the first admin, safe to copy from a log. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

/** Checks a new password; returns why it is rejected, or null when it is acceptable. */
export function checkNewPassword(password: unknown): string | null {
  if (typeof password !== 'string') return 'Missing password';
  if (password.length < MIN_PASSWORD_LENGTH)
    return `Password must be at least ${MIN_PASSWORD_LENGTH} characters`;
  if (password.length > MAX_PASSWORD_LENGTH)
    return `Password must be at most ${MAX_PASSWORD_LENGTH} characters`;
  return null;
}
