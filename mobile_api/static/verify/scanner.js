// Finding the QR code in a picture or a camera stream: the browser's BarcodeDetector where it
// exists (Android Chrome), else the vendored jsQR decoder, loaded only when first needed.

const MAX_SIDE = 1280;
let detector = null;
let jsqrLoading = null;

async function nativeDetector() {
  if (detector !== null) return detector;
  detector = false;
  if ("BarcodeDetector" in globalThis) {
    try {
      const formats = await globalThis.BarcodeDetector.getSupportedFormats();
      if (formats.includes("qr_code")) detector = new globalThis.BarcodeDetector({ formats: ["qr_code"] });
    } catch {
      detector = false;
    }
  }
  return detector;
}

function loadJsQR() {
  jsqrLoading ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = new URL("vendor/jsQR.js", import.meta.url).href;
    script.onload = () => resolve(globalThis.jsQR);
    script.onerror = () => reject(new Error("QR decoder did not load"));
    document.head.append(script);
  });
  return jsqrLoading;
}

/** Draw `source` scaled so that its longer side is at most `side` pixels. */
function pixels(source, width, height, side) {
  const scale = Math.min(1, side / Math.max(width, height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(width * scale));
  canvas.height = Math.max(1, Math.round(height * scale));
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(source, 0, 0, canvas.width, canvas.height);
  return context.getImageData(0, 0, canvas.width, canvas.height);
}

/** The text of the first QR code in an image, video frame or bitmap, or null. */
export async function decode(source, width, height) {
  const native = await nativeDetector();
  if (native) {
    const codes = await native.detect(source);
    return codes.length ? codes[0].rawValue : null;
  }
  const jsQR = await loadJsQR();
  // Big photos first at a moderate size (fast), then at full detail (small codes).
  for (const side of [800, MAX_SIDE]) {
    const image = pixels(source, width, height, side);
    const code = jsQR(image.data, image.width, image.height, { inversionAttempts: "attemptBoth" });
    if (code) return code.data;
    if (Math.max(width, height) <= side) break;
  }
  return null;
}

export async function decodeFile(file) {
  const bitmap = await createImageBitmap(file);
  try {
    return await decode(bitmap, bitmap.width, bitmap.height);
  } finally {
    bitmap.close();
  }
}

/** Scan the camera stream into `video` until a code is found or `signal` aborts. */
export async function scanCamera(video, signal) {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: "environment", width: { ideal: 1280 } },
    audio: false,
  });
  try {
    video.srcObject = stream;
    await video.play();
    while (!signal.aborted) {
      if (video.videoWidth) {
        const text = await decode(video, video.videoWidth, video.videoHeight);
        if (text) return text;
      }
      await new Promise((resolve) => setTimeout(resolve, 120));
    }
    return null;
  } finally {
    for (const track of stream.getTracks()) track.stop();
    video.srcObject = null;
  }
}
