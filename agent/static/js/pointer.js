// Pointer: page coordinates scaled to the remote screen. The video keeps its aspect ratio inside
// its box, so the picture may be letterboxed on either axis.

// The browser's mouse buttons as X buttons (left, middle, right, back, forward).
export const BUTTONS = { 0: 1, 1: 2, 2: 3, 3: 8, 4: 9 };

export function xButton(browserButton) {
  return BUTTONS[browserButton] || 1;
}

// The point on the remote screen under (clientX, clientY), or null before the first frame.
export function remotePoint(rect, videoWidth, videoHeight, clientX, clientY) {
  if (!videoWidth || !videoHeight) return null;
  const scale = Math.min(rect.width / videoWidth, rect.height / videoHeight);
  const ox = rect.left + (rect.width - videoWidth * scale) / 2;
  const oy = rect.top + (rect.height - videoHeight * scale) / 2;
  return { x: Math.round((clientX - ox) / scale), y: Math.round((clientY - oy) / scale) };
}

// The wheel as X sees it: one step per event, whatever the browser's delta mode.
export function wheelSteps(e) {
  return { dx: Math.sign(e.deltaX), dy: Math.sign(e.deltaY) };
}
