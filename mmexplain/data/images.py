"""Decoding users' image files to 8-bit RGB, whatever their mode, with a size guard.

Mode conversions (documented once, here):

==================  ===========================================================================
mode                becomes
==================  ===========================================================================
``RGB``, ``L``      as stored (gray repeated over the three channels)
``1``               0 -> 0, 1 -> 255
``I;16*``, ``I``    16-bit gray scaled to 8 bits: ``round(v / 257)`` (65535 -> 255); an ``I``
                    image with values outside 0..65535 is refused
``P``, ``PA``       palette looked up; transparency composited over black
``RGBA``, ``LA``,   alpha composited over black: ``round(c * a / 255)`` (a fully transparent
``RGBa``, ``La``    pixel reads as black, an opaque one as stored)
``CMYK``, ``YCbCr`` Pillow's conversion to RGB (no colour management)
``F`` and others    refused: save the image as 8- or 16-bit PNG / JPEG
==================  ===========================================================================

Only the first frame of an animated file is read. EXIF orientation is not applied.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

from ..exceptions import DataError
from .options import MAX_IMAGE_PIXELS

__all__ = ["MAX_IMAGE_BYTES", "decode_image"]

#: Files larger than this are refused before they are read.
MAX_IMAGE_BYTES = 64 * 2**20
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ALPHA = ("RGBA", "RGBa", "LA", "La", "PA", "P")
_PILLOW_RGB = ("RGB", "L", "1", "CMYK", "YCbCr")


def _to_rgb8(im: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 from an opened image of any supported mode (see the module doc)."""
    mode = im.mode
    if mode in _SIXTEEN_BIT:
        a = np.asarray(im)
        if a.size and (int(a.min()) < 0 or int(a.max()) > 65535):
            raise DataError(f"is an integer image with values in {int(a.min())}..{int(a.max())}, outside 0..65535")
        gray = np.round(a.astype(np.float64) / 257.0).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode in _ALPHA:
        rgba = np.asarray(im.convert("RGBA")).astype(np.float64)
        return np.round(rgba[..., :3] * rgba[..., 3:] / 255.0).astype(np.uint8)
    if mode in _PILLOW_RGB:
        return np.asarray(im.convert("RGB"))
    raise DataError(f"has mode {mode!r}, which is not supported; save it as 8- or 16-bit PNG or JPEG")


def decode_image(data: bytes, size: tuple[int, int], *, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode an image file's bytes to a (3, H, W) uint8 array of exactly ``size``.

    The declared size is checked from the header, before any pixel is decoded, so a
    decompression bomb costs nothing.

    Parameters
    ----------
    data : bytes
        The file's contents.
    size : (height, width)
        Required size; images are never resized.
    max_pixels : int
        Largest height x width accepted.

    Returns
    -------
    ndarray of shape (3, H, W), dtype uint8

    Raises
    ------
    DataError
        A predicate without the file's name ("is not a readable image", "is 5x7 (HxW), ...");
        the caller names the file, row and column.
    """
    h, w = size
    with warnings.catch_warnings():
        # Pillow warns (not raises) between its limit and twice it: make every bomb an error
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as im:
                iw, ih = im.size
                if iw * ih > max_pixels:
                    raise DataError(f"declares {ih}x{iw} (HxW) pixels, over the limit of {max_pixels} "
                                    "(decompression-bomb guard)")
                if (ih, iw) != (h, w):
                    raise DataError(f"is {ih}x{iw} (HxW), expected {h}x{w}; resize it or pass image_size")
                arr = _to_rgb8(im)
        except DataError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise DataError(f"declares more than {max_pixels} pixels (decompression-bomb guard)") from None
        except Exception:  # any decoder failure on a user's file is the same finding, and says no more
            raise DataError("is not a readable image") from None
    return np.ascontiguousarray(arr.transpose(2, 0, 1))
