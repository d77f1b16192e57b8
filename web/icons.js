// Inline SVG icons: they render without an emoji font, and take the text's colour.
const NS = 'http://www.w3.org/2000/svg'
const PATHS = {
  // a paper clip
  file: 'M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5h-1.5v9a3 3 0 0 0 6 0V5a4.5 4.5 0 0 0-9 0v11.5a6 6 0 0 0 12 0v-10z',
  // a push pin
  pin: 'M15 3l6 6-2 1-3 3 .5 5-1.5 1.5-4-4-5 5H5v-1l5-5-4-4L7.5 8l5 .5 3-3z',
  // three dots
  more: 'M5 10a2 2 0 1 0 0 4 2 2 0 0 0 0-4zm7 0a2 2 0 1 0 0 4 2 2 0 0 0 0-4zm7 0a2 2 0 1 0 0 4 2 2 0 0 0 0-4z',
}

export function icon(name) {
  const svg = document.createElementNS(NS, 'svg')
  svg.setAttribute('viewBox', '0 0 24 24')
  svg.setAttribute('width', '1em')
  svg.setAttribute('height', '1em')
  svg.setAttribute('aria-hidden', 'true')
  svg.setAttribute('focusable', 'false')
  svg.classList.add('icon', `icon-${name}`)
  const path = document.createElementNS(NS, 'path')
  path.setAttribute('d', PATHS[name])
  path.setAttribute('fill', 'currentColor')
  svg.append(path)
  return svg
}
