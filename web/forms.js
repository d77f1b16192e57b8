// Forms: the API's validation details next to their fields.

const friendly = {
  password: 'Use 8 or more characters with an upper-case letter, a lower-case letter and a digit',
  username: 'Use 3–32 letters, digits or underscores',
}
const $ = (selector) => document.querySelector(selector)

/** The API's validation details ("/password must …") shown next to their fields. */
export function showErrors(form, prefix, err) {
  for (const p of form.querySelectorAll('.field-error, .form-error')) p.textContent = ''
  for (const input of form.querySelectorAll('input')) input.removeAttribute('aria-invalid')
  const place = (field, text) => {
    const slot = $(`#${prefix}-${field}-error`)
    if (!slot) return false
    slot.textContent = text
    $(`#${prefix}-${field}`).setAttribute('aria-invalid', 'true')
    return true
  }
  let placed = false
  for (const detail of err.details ?? []) {
    const m = /^\/(\w+)\s+(.*)$/.exec(detail)
    if (!m) continue
    const [, field, message] = m
    const text = /pattern|format/.test(message) && friendly[field] ? friendly[field] : `${field.replace('_', ' ')} ${message}`
    placed = place(field, text) || placed
  }
  if (err.code === 'USERNAME_TAKEN' || (err.status === 409 && /username/i.test(err.message))) placed = place('username', err.message)
  else if (err.status === 409 && /email/i.test(err.message)) placed = place('email', err.message)
  else if (err.code === 'WRONG_PASSWORD' || err.code === 'CURRENT_PASSWORD_REQUIRED') placed = place('current_password', err.message)
  if (!placed) form.querySelector('.form-error').textContent = err.message || 'Something went wrong'
}
