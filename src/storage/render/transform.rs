//! The transformation itself, synchronous and CPU-bound (run it on a
//! blocking thread): decode (JPEG, PNG, WebP) under a pixel limit read from
//! the header before any pixel is decoded, resize as imgproxy does for
//! storage-api (never enlarging), encode.
//!
//! Output: the source's format, or WebP when asked for (`format=webp`, or no
//! `format` and an `Accept` naming `image/webp`). JPEG honours `quality`
//! (default 80, as imgproxy); the `image` crate writes WebP losslessly only,
//! so `quality` does not apply to WebP output.

use std::io::Cursor;

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use super::options::{Format, Resize, TransformOptions};

/// JPEG quality when none is asked for.
const DEFAULT_QUALITY: u8 = 80;

/// Why a transformation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransformError {
    /// The source has more pixels than allowed.
    #[error("Source image resolution is too big: {width}x{height} exceeds {limit} pixels")]
    TooManyPixels {
        /// Source width.
        width: u32,
        /// Source height.
        height: u32,
        /// The limit.
        limit: u64,
    },
    /// Not a JPEG, PNG or WebP image.
    #[error("Unsupported image format")]
    Unsupported,
    /// Corrupt data, or a decoder limit hit.
    #[error("Unable to decode the source image: {0}")]
    Decode(String),
    /// Encoding failed.
    #[error("Unable to encode the image: {0}")]
    Encode(String),
}

/// A transformed image.
#[derive(Debug)]
pub struct Rendered {
    /// Encoded bytes.
    pub bytes: Vec<u8>,
    /// Their MIME type.
    pub content_type: &'static str,
}

/// Decodes `src`, refusing more than `max_pixels`.
fn decode(src: &[u8], max_pixels: u64) -> Result<(DynamicImage, ImageFormat), TransformError> {
    let reader = ImageReader::new(Cursor::new(src)).with_guessed_format().map_err(|e| TransformError::Decode(e.to_string()))?;
    let format = reader.format().filter(|f| matches!(f, ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP)).ok_or(TransformError::Unsupported)?;
    let mut reader = reader;
    let mut limits = image::Limits::default();
    // Decoded pixels (up to 8 bytes each) plus the decoders' own buffers.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(|e| TransformError::Decode(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(TransformError::TooManyPixels { width, height, limit: max_pixels });
    }
    let img = DynamicImage::from_decoder(decoder).map_err(|e| TransformError::Decode(e.to_string()))?;
    Ok((img, format))
}

fn scaled(n: u32, scale: f64) -> u32 {
    ((f64::from(n) * scale).round() as u32).max(1)
}

/// The size to resize to and the (centred) crop after it, as imgproxy's
/// `fill` (cover), `fit` (contain) and `force` (fill) with enlarging off.
pub fn geometry(src: (u32, u32), o: &TransformOptions) -> Option<((u32, u32), (u32, u32))> {
    let (sw, sh) = src;
    let (fw, fh) = (f64::from(sw), f64::from(sh));
    match (o.width, o.height) {
        (None, None) => None,
        (Some(w), None) => {
            let s = (f64::from(w) / fw).min(1.0);
            let r = (scaled(sw, s), scaled(sh, s));
            Some((r, r))
        }
        (None, Some(h)) => {
            let s = (f64::from(h) / fh).min(1.0);
            let r = (scaled(sw, s), scaled(sh, s));
            Some((r, r))
        }
        (Some(w), Some(h)) => match o.resize {
            Resize::Fill => {
                let r = (w.min(sw), h.min(sh));
                Some((r, r))
            }
            Resize::Contain => {
                let s = (f64::from(w) / fw).min(f64::from(h) / fh).min(1.0);
                let r = (scaled(sw, s), scaled(sh, s));
                Some((r, r))
            }
            Resize::Cover => {
                let s = (f64::from(w) / fw).max(f64::from(h) / fh).min(1.0);
                let r = (scaled(sw, s), scaled(sh, s));
                Some((r, (w.min(r.0), h.min(r.1))))
            }
        },
    }
}

/// Transforms `src` as `o` asks; `accept_webp` is whether the client's
/// `Accept` names `image/webp`.
pub fn transform(src: &[u8], o: &TransformOptions, accept_webp: bool, max_pixels: u64) -> Result<Rendered, TransformError> {
    let (mut img, format) = decode(src, max_pixels)?;
    if let Some(((rw, rh), (cw, ch))) = geometry((img.width(), img.height()), o) {
        if (rw, rh) != (img.width(), img.height()) {
            img = img.resize_exact(rw, rh, FilterType::CatmullRom);
        }
        if (cw, ch) != (rw, rh) {
            img = img.crop_imm((rw - cw) / 2, (rh - ch) / 2, cw, ch);
        }
    }
    let webp = match o.format {
        Some(Format::Webp) => true,
        Some(Format::Origin) => false,
        None => accept_webp,
    };
    let out = if webp { ImageFormat::WebP } else { format };
    let mut bytes = Vec::new();
    let enc = |e: image::ImageError| TransformError::Encode(e.to_string());
    let content_type = match out {
        ImageFormat::Jpeg => {
            let q = o.quality.unwrap_or(DEFAULT_QUALITY);
            let rgb = DynamicImage::ImageRgb8(img.to_rgb8());
            rgb.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, q)).map_err(enc)?;
            "image/jpeg"
        }
        ImageFormat::Png => {
            img.write_with_encoder(image::codecs::png::PngEncoder::new(&mut bytes)).map_err(enc)?;
            "image/png"
        }
        _ => {
            let rgba = DynamicImage::ImageRgba8(img.to_rgba8());
            rgba.write_with_encoder(image::codecs::webp::WebPEncoder::new_lossless(&mut bytes)).map_err(enc)?;
            "image/webp"
        }
    };
    Ok(Rendered { bytes, content_type })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 7])));
        let mut out = Vec::new();
        img.write_with_encoder(image::codecs::png::PngEncoder::new(&mut out)).expect("encode");
        out
    }

    fn dims(bytes: &[u8]) -> (u32, u32) {
        let img = image::load_from_memory(bytes).expect("decodes");
        (img.width(), img.height())
    }

    fn opts(width: Option<u32>, height: Option<u32>, resize: Resize) -> TransformOptions {
        TransformOptions { width, height, resize, ..TransformOptions::default() }
    }

    #[test]
    fn geometry_follows_imgproxy() {
        let g = |o| geometry((400, 200), &o);
        assert_eq!(g(opts(Some(100), None, Resize::Cover)), Some(((100, 50), (100, 50))));
        assert_eq!(g(opts(None, Some(50), Resize::Cover)), Some(((100, 50), (100, 50))));
        assert_eq!(g(opts(Some(100), Some(100), Resize::Cover)), Some(((200, 100), (100, 100))));
        assert_eq!(g(opts(Some(100), Some(100), Resize::Contain)), Some(((100, 50), (100, 50))));
        assert_eq!(g(opts(Some(100), Some(100), Resize::Fill)), Some(((100, 100), (100, 100))));
        // Never enlarged.
        assert_eq!(g(opts(Some(800), None, Resize::Cover)), Some(((400, 200), (400, 200))));
        assert_eq!(g(opts(None, None, Resize::Cover)), None);
    }

    #[test]
    fn resizes_and_converts() {
        let src = png(64, 32);
        let r = transform(&src, &opts(Some(16), Some(16), Resize::Cover), false, 1 << 20).expect("cover");
        assert_eq!((r.content_type, dims(&r.bytes)), ("image/png", (16, 16)));
        let o = TransformOptions { format: Some(Format::Webp), ..opts(Some(32), None, Resize::Contain) };
        let r = transform(&src, &o, false, 1 << 20).expect("webp");
        assert_eq!((r.content_type, dims(&r.bytes)), ("image/webp", (32, 16)));
        let r = transform(&src, &TransformOptions::default(), true, 1 << 20).expect("accept webp");
        assert_eq!(r.content_type, "image/webp");
    }

    #[test]
    fn refuses_bombs_and_garbage() {
        let src = png(100, 100);
        assert_eq!(
            transform(&src, &TransformOptions::default(), false, 9_999).err(),
            Some(TransformError::TooManyPixels { width: 100, height: 100, limit: 9_999 })
        );
        assert_eq!(transform(b"not an image", &TransformOptions::default(), false, 1 << 20).err(), Some(TransformError::Unsupported));
        let mut cut = src.clone();
        cut.truncate(60);
        assert!(matches!(transform(&cut, &TransformOptions::default(), false, 1 << 20), Err(TransformError::Decode(_))));
    }
}
