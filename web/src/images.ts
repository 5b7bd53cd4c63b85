/**
 * Dropped image files to ImageNet eval tensors [3, 224, 224]. PNG and JPEG
 * go through @kiln/resnet's own decoders (PNG equals PIL byte for byte);
 * anything else the browser can open (WebP, GIF, BMP, AVIF) is decoded by
 * `createImageBitmap` and then takes the same PIL-exact resize and crop.
 */
import { FormatError } from '@kiln/core';
import { decodeImage, preprocessImage, type ImageTensor, type RgbImage } from '@kiln/resnet';

/** A decoded, preprocessed image and how it was decoded. */
export interface PreparedImage {
  name: string;
  tensor: ImageTensor;
  decoder: 'kiln' | 'browser';
  width: number;
  height: number;
}

const isPngOrJpeg = (b: Uint8Array) => (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) || (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff);

/** RGB pixels of any image the browser decodes (alpha dropped, like PIL's convert('RGB')). */
async function browserDecode(bytes: Uint8Array, name: string): Promise<RgbImage> {
  if (typeof createImageBitmap !== 'function' || typeof OffscreenCanvas !== 'function') {
    throw new FormatError('decodeImage', `'${name}' is not a PNG or JPEG, and this environment has no createImageBitmap to decode it`);
  }
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes as BlobPart]), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch {
    throw new FormatError('decodeImage', `'${name}' cannot be decoded as an image (not PNG, JPEG, or another format this browser reads)`);
  }
  const { width, height } = bitmap;
  const ctx = new OffscreenCanvas(width, height).getContext('2d');
  if (!ctx) throw new FormatError('decodeImage', 'no 2D canvas context to read the decoded pixels');
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; j < data.length; i += 4, j += 3) {
    data[j] = rgba[i]!;
    data[j + 1] = rgba[i + 1]!;
    data[j + 2] = rgba[i + 2]!;
  }
  return { width, height, data };
}

/**
 * Decodes and preprocesses one image file (Resize 256, CenterCrop 224,
 * ToTensor, Normalize with ImageNet's mean and std).
 * @throws FormatError naming the file when it is not an image.
 */
export async function prepareImage(bytes: Uint8Array, name: string): Promise<PreparedImage> {
  try {
    if (isPngOrJpeg(bytes)) {
      const img = decodeImage(bytes);
      return { name, tensor: preprocessImage(img), decoder: 'kiln', width: img.width, height: img.height };
    }
    const img = await browserDecode(bytes, name);
    return { name, tensor: preprocessImage(img), decoder: 'browser', width: img.width, height: img.height };
  } catch (e) {
    if (e instanceof FormatError && e.message.includes(name)) throw e;
    throw new FormatError('decodeImage', `'${name}' cannot be decoded: ${(e as Error).message}`);
  }
}
