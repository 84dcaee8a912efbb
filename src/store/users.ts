import type pg from 'pg';

export type UserRole = 'viewer' | 'admin';

export interface User {
  id: number;
  username: string;
  role: UserRole;
  mustChangePassword: boolean;
  createdAt: Date;
  passwordChangedAt: Date;
}

export interface UserWithHash extends User {
  passwordHash: string;
}

const USER_COLUMNS = `
  id, username, role, must_change_password, created_at, password_changed_at`;

const INSERT_USER = `
  INSERT INTO users (username, role, password_hash, must_change_password)
  VALUES ($1, $2, $3, $4)
  ON CONFLICT (username) DO NOTHING
  RETURNING ${USER_COLUMNS}`;

// Inserts the admin only while no admin exists, in one statement, so that two instances
// starting together create one admin at most.
const INSERT_FIRST_ADMIN = `
  INSERT INTO users (username, role, password_hash, must_change_password)
  SELECT $1, 'admin', $2, $3
   WHERE NOT EXISTS (SELECT 1 FROM users WHERE role = 'admin')
  ON CONFLICT (username) DO NOTHING
  RETURNING ${USER_COLUMNS}`;

const FIND_USER_BY_NAME = `
  SELECT ${USER_COLUMNS}, password_hash FROM users WHERE username = $1`;

const FIND_USER_BY_ID = `SELECT ${USER_COLUMNS}, password_hash FROM users WHERE id = $1`;

const LIST_USERS = `SELECT ${USER_COLUMNS} FROM users ORDER BY username`;

const UPDATE_PASSWORD = `
  UPDATE users
     SET password_hash = $2, must_change_password = $3, password_changed_at = now()
   WHERE id = $1
  RETURNING ${USER_COLUMNS}`;

// The last admin can be neither demoted nor deleted, so that someone can always manage users.
const UPDATE_ROLE = `
  UPDATE users SET role = $2
   WHERE id = $1
     AND ($2 = 'admin' OR EXISTS (SELECT 1 FROM users other WHERE other.role = 'admin' AND other.id <> $1))
  RETURNING ${USER_COLUMNS}`;

const DELETE_USER = `
  DELETE FROM users
   WHERE id = $1
     AND (role <> 'admin' OR EXISTS (SELECT 1 FROM users other WHERE other.role = 'admin' AND other.id <> $1))
  RETURNING id`;

interface UserRow {
  id: number;
  username: string;
  role: UserRole;
  must_change_password: boolean;
  created_at: Date;
  password_changed_at: Date;
  password_hash?: string;
}

function toUser(row: UserRow): User {
  return {
    id: row.id,
    username: row.username,
    role: row.role,
    mustChangePassword: row.must_change_password,
    createdAt: row.created_at,
    passwordChangedAt: row.password_changed_at,
  };
}

/** User names are compared without case: `Admin` and `admin` are one user. */
export function normalizeUsername(username: string): string {
  return username.trim().toLowerCase();
}

/** Inserts a user; returns null when the name is taken. */
export async function saveUser(
  pool: pg.Pool,
  user: { username: string; role: UserRole; passwordHash: string; mustChangePassword?: boolean },
): Promise<User | null> {
  const { rows } = await pool.query<UserRow>(INSERT_USER, [
    normalizeUsername(user.username),
    user.role,
    user.passwordHash,
    user.mustChangePassword ?? false,
  ]);
  return rows[0] ? toUser(rows[0]) : null;
}

/** Inserts the first admin; returns null when an admin (or a user of that name) exists. */
export async function saveFirstAdmin(
  pool: pg.Pool,
  username: string,
  passwordHash: string,
  mustChangePassword: boolean,
): Promise<User | null> {
  const { rows } = await pool.query<UserRow>(INSERT_FIRST_ADMIN, [
    normalizeUsername(username),
    passwordHash,
    mustChangePassword,
  ]);
  return rows[0] ? toUser(rows[0]) : null;
}

/** Finds a user with its password hash, for login. */
export async function findUserByName(
  pool: pg.Pool,
  username: string,
): Promise<UserWithHash | null> {
  const { rows } = await pool.query<UserRow>(FIND_USER_BY_NAME, [normalizeUsername(username)]);
  if (!rows[0]) return null;
  return { ...toUser(rows[0]), passwordHash: rows[0].password_hash! };
}

/** Finds a user with its password hash, for a password change. */
export async function findUserById(pool: pg.Pool, id: number): Promise<UserWithHash | null> {
  const { rows } = await pool.query<UserRow>(FIND_USER_BY_ID, [id]);
  if (!rows[0]) return null;
  return { ...toUser(rows[0]), passwordHash: rows[0].password_hash! };
}

export async function listUsers(pool: pg.Pool): Promise<User[]> {
  const { rows } = await pool.query<UserRow>(LIST_USERS);
  return rows.map(toUser);
}

/** Replaces a user's password hash; returns null when the user does not exist. */
export async function updatePassword(
  pool: pg.Pool,
  id: number,
  passwordHash: string,
  mustChangePassword = false,
): Promise<User | null> {
  const { rows } = await pool.query<UserRow>(UPDATE_PASSWORD, [
    id,
    passwordHash,
    mustChangePassword,
  ]);
  return rows[0] ? toUser(rows[0]) : null;
}

/** Changes a user's role; returns null when the user does not exist or is the last admin. */
export async function updateRole(pool: pg.Pool, id: number, role: UserRole): Promise<User | null> {
  const { rows } = await pool.query<UserRow>(UPDATE_ROLE, [id, role]);
  return rows[0] ? toUser(rows[0]) : null;
}

/** Deletes a user and, through the foreign key, its sessions; false for the last admin. */
export async function deleteUser(pool: pg.Pool, id: number): Promise<boolean> {
  const { rows } = await pool.query(DELETE_USER, [id]);
  return rows.length > 0;
}
