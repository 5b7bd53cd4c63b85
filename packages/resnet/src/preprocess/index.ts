/**
 * Image decoding and torchvision's ImageNet transforms on plain typed
 * arrays, PIL-exact (see resample.ts for the resize).
 */
export { decodeImage, type DecodedImage, type DecodeOptions } from './decode.js';
export { newImage, type RgbImage } from './image.js';
export { resizeBilinear } from './resample.js';
export {
  centerCrop,
  crop,
  hflip,
  IMAGENET_MEAN,
  IMAGENET_STD,
  randomHorizontalFlip,
  randomResizedCrop,
  randomResizedCropParams,
  resize,
  roundHalfEven,
  toTensorNormalize,
  type CropBox,
  type RandomResizedCropOptions,
  type Rng,
} from './transforms.js';
export {
  batchImages,
  preprocessImage,
  preprocessTrainImage,
  type ImageTensor,
  type PreprocessOptions,
  type TrainPreprocessOptions,
} from './pipeline.js';
