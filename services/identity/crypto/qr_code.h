#pragma once

// QR codes for showing a TOTP enrolment URI (or any short text) to a user, as a PNG image or as
// SVG markup. Error correction level M; 4 modules of quiet zone on every side; the smallest
// symbol version that holds the text, chosen by libqrencode.
//
//   SB_ASSIGN_OR_RETURN(std::string png, QrPng(OtpauthUri("Switchboard", email, secret)));
//
// Status codes: InvalidArgument for empty text, text over kMaxQrTextBytes bytes or a module size
// outside [1, 32] (the message names "text" or "module_px"); ResourceExhausted when memory runs
// out; Internal when libqrencode or libpng fails otherwise.
//
// Thread-safety: safe to call from any number of threads at once (Debian's libqrencode is built
// with its internal locking; libpng state is per call).

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sb::identity {

inline constexpr size_t kMaxQrTextBytes = 1000;

// A 1-bit grayscale PNG of the QR code for `text`, each module `module_px` pixels square: the image
// is (modules + 8) * module_px pixels wide and high. Built in memory (no files).
absl::StatusOr<std::string> QrPng(std::string_view text, int module_px = 6);

// An SVG document of the QR code for `text`: a white background and one <path> of the dark
// modules, viewBox "0 0 W W" in modules (W = modules + 8, quiet zone included), with
// shape-rendering="crispEdges" so that scaling keeps module edges sharp. It has no width or
// height: size it with CSS.
absl::StatusOr<std::string> QrSvg(std::string_view text);

}  // namespace sb::identity
