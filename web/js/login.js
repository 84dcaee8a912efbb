// The login page: logs in, sets a new password when the account still has a one-time
// password, then returns to the page that sent the user here.

const loginForm = document.getElementById('login-form');
const passwordForm = document.getElementById('password-form');
const errorLine = document.getElementById('login-error');
let csrfToken = null;

/**
 * The page to return to: a path on this site only, never another origin. The value is
 * resolved the way the browser would resolve it, because browsers drop tabs and line breaks
 * from URLs, which turns `/\t/host` into `//host`.
 */
function nextPath() {
  const next = new URLSearchParams(location.search).get('next') ?? '/';
  let target;
  try {
    target = new URL(next, location.origin);
  } catch {
    return '/';
  }
  if (target.origin !== location.origin) return '/';
  return `${target.pathname}${target.search}${target.hash}`;
}

async function post(path, body) {
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
  if (csrfToken) headers['X-CSRF-Token'] = csrfToken;
  const response = await fetch(path, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
    credentials: 'same-origin',
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok)
    throw new Error(data?.error?.message ?? `Request failed with HTTP ${response.status}`);
  return data;
}

function askForNewPassword(session) {
  csrfToken = session.csrfToken;
  loginForm.hidden = true;
  passwordForm.hidden = false;
  passwordForm.elements.currentPassword.focus();
}

loginForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  errorLine.textContent = '';
  const { username, password } = loginForm.elements;
  try {
    const session = await post('/api/auth/login', {
      username: username.value,
      password: password.value,
    });
    if (session.user.mustChangePassword) {
      passwordForm.elements.currentPassword.value = password.value;
      askForNewPassword(session);
      return;
    }
    location.assign(nextPath());
  } catch (error) {
    errorLine.textContent = error.message;
    password.select();
  }
});

passwordForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  errorLine.textContent = '';
  const { currentPassword, newPassword, confirmPassword } = passwordForm.elements;
  if (newPassword.value !== confirmPassword.value) {
    errorLine.textContent = 'The two new passwords differ';
    return;
  }
  try {
    await post('/api/auth/password', {
      currentPassword: currentPassword.value,
      newPassword: newPassword.value,
    });
    location.assign(nextPath());
  } catch (error) {
    errorLine.textContent = error.message;
  }
});

// Already logged in: go on, or finish the password change that a previous visit left open.
fetch('/api/auth/session', { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
  .then((response) => (response.ok ? response.json() : null))
  .then((session) => {
    if (!session) return;
    if (session.user.mustChangePassword) askForNewPassword(session);
    else location.assign(nextPath());
  })
  .catch(() => {});
