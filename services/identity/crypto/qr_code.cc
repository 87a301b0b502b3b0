#include "services/identity/crypto/qr_code.h"

#include <png.h>
#include <qrencode.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <vector>

namespace sb::identity {
namespace {

constexpr int kQuietZoneModules = 4;
constexpr int kMaxModulePx = 32;

// The symbol as a square of booleans, quiet zone included.
struct QrMatrix {
  int size = 0;  // modules per side
  std::vector<bool> dark;

  bool IsDark(int x, int y) const { return dark[static_cast<size_t>(y) * size + x]; }
};

struct QrCodeDeleter {
  void operator()(QRcode* code) const { QRcode_free(code); }
};

absl::StatusOr<QrMatrix> Encode(std::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("text: must not be empty");
  if (text.size() > kMaxQrTextBytes) {
    return absl::InvalidArgumentError("text: must be at most " + std::to_string(kMaxQrTextBytes) +
                                      " bytes for a QR code");
  }
  const std::string terminated(text);
  errno = 0;
  // QRcode_encodeString picks numeric/alphanumeric/8-bit segments for the smallest symbol, but
  // stops at a NUL; text with NULs goes through the all-8-bit encoder.
  std::unique_ptr<QRcode, QrCodeDeleter> code(
      terminated.find('\0') == std::string::npos
          ? QRcode_encodeString(terminated.c_str(), 0, QR_ECLEVEL_M, QR_MODE_8, 1)
          : QRcode_encodeData(static_cast<int>(terminated.size()),
                              reinterpret_cast<const unsigned char*>(terminated.data()), 0,
                              QR_ECLEVEL_M));
  if (code == nullptr) {
    const int err = errno;
    if (err == ENOMEM) return absl::ResourceExhaustedError("QR code: out of memory");
    if (err == ERANGE) return absl::InvalidArgumentError("text: too long for a QR code");
    return absl::InternalError(std::string("QR code: libqrencode failed: ") + std::strerror(err));
  }
  QrMatrix matrix;
  matrix.size = code->width + 2 * kQuietZoneModules;
  matrix.dark.assign(static_cast<size_t>(matrix.size) * matrix.size, false);
  for (int y = 0; y < code->width; ++y) {
    for (int x = 0; x < code->width; ++x) {
      // Bit 0 of each module byte is "dark"; the other bits say what kind of module it is.
      const bool dark = (code->data[y * code->width + x] & 1) != 0;
      matrix
          .dark[static_cast<size_t>(y + kQuietZoneModules) * matrix.size + x + kQuietZoneModules] =
          dark;
    }
  }
  return matrix;
}

// Where libpng's callbacks report to. Trivially destructible on purpose: libpng's errors longjmp
// across the frames that hold it.
struct PngSink {
  std::string* out;
  bool out_of_memory;
  char error[128];
};

void PngWrite(png_structp png, png_bytep data, size_t length) {
  auto* sink = static_cast<PngSink*>(png_get_io_ptr(png));
  bool appended = false;
  try {
    sink->out->append(reinterpret_cast<const char*>(data), length);
    appended = true;
  } catch (const std::exception&) {
    sink->out_of_memory = true;
  }
  // png_error longjmps: call it after the handler has finished, never from inside it, and never
  // let the exception itself unwind through libpng's C frames.
  if (!appended) png_error(png, "out of memory");
}

void PngFlush(png_structp) {}

[[noreturn]] void PngError(png_structp png, png_const_charp message) {
  auto* sink = static_cast<PngSink*>(png_get_error_ptr(png));
  std::snprintf(sink->error, sizeof(sink->error), "%s", message != nullptr ? message : "?");
  png_longjmp(png, 1);
}

void PngWarning(png_structp, png_const_charp) {}

// Writes the image whose pixel rows are `packed` module rows (each `row_bytes` long, 1 bit per
// pixel) repeated `module_px` times. Returns false when libpng reported an error through
// PngError. Only trivially destructible objects may live in this frame: a longjmp lands here.
bool WritePngRows(png_structp png, png_infop info, const unsigned char* packed, size_t row_bytes,
                  uint32_t size_px, int module_px) {
  if (setjmp(png_jmpbuf(png)) != 0) return false;
  png_set_IHDR(png, info, size_px, size_px, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(png, 9);
  png_write_info(png, info);
  for (uint32_t y = 0; y < size_px; ++y) {
    png_write_row(png, packed + (y / static_cast<uint32_t>(module_px)) * row_bytes);
  }
  png_write_end(png, info);
  return true;
}

// Owns libpng's write and info structs.
class PngWriter {
 public:
  explicit PngWriter(PngSink* sink)
      : png_(png_create_write_struct(PNG_LIBPNG_VER_STRING, sink, PngError, PngWarning)) {
    if (png_ != nullptr) info_ = png_create_info_struct(png_);
    if (info_ != nullptr) png_set_write_fn(png_, sink, PngWrite, PngFlush);
  }
  ~PngWriter() { png_destroy_write_struct(&png_, info_ != nullptr ? &info_ : nullptr); }
  PngWriter(const PngWriter&) = delete;
  PngWriter& operator=(const PngWriter&) = delete;

  bool ok() const { return png_ != nullptr && info_ != nullptr; }
  png_structp png() const { return png_; }
  png_infop info() const { return info_; }

 private:
  png_structp png_ = nullptr;
  png_infop info_ = nullptr;
};

}  // namespace

absl::StatusOr<std::string> QrPng(std::string_view text, int module_px) {
  if (module_px < 1 || module_px > kMaxModulePx) {
    return absl::InvalidArgumentError("module_px: must be between 1 and " +
                                      std::to_string(kMaxModulePx));
  }
  absl::StatusOr<QrMatrix> matrix = Encode(text);
  if (!matrix.ok()) return matrix.status();

  const uint32_t size_px = static_cast<uint32_t>(matrix->size * module_px);
  const size_t row_bytes = (size_px + 7) / 8;
  // One packed pixel row per module row; bit 1 is white in 1-bit grayscale, MSB first.
  std::vector<unsigned char> packed(row_bytes * static_cast<size_t>(matrix->size), 0);
  for (int my = 0; my < matrix->size; ++my) {
    unsigned char* row = packed.data() + static_cast<size_t>(my) * row_bytes;
    for (uint32_t px = 0; px < size_px; ++px) {
      if (!matrix->IsDark(static_cast<int>(px / module_px), my)) {
        row[px / 8] |= static_cast<unsigned char>(0x80u >> (px % 8));
      }
    }
  }

  std::string out;
  PngSink sink{&out, false, {}};
  PngWriter writer(&sink);
  if (!writer.ok()) return absl::ResourceExhaustedError("QR code: libpng could not allocate");
  if (!WritePngRows(writer.png(), writer.info(), packed.data(), row_bytes, size_px, module_px)) {
    if (sink.out_of_memory) return absl::ResourceExhaustedError("QR code: out of memory");
    return absl::InternalError(std::string("QR code: libpng failed: ") + sink.error);
  }
  return out;
}

absl::StatusOr<std::string> QrSvg(std::string_view text) {
  absl::StatusOr<QrMatrix> matrix = Encode(text);
  if (!matrix.ok()) return matrix.status();
  const std::string n = std::to_string(matrix->size);
  std::string svg;
  svg.append("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 ")
      .append(n)
      .append(" ")
      .append(n)
      .append("\" shape-rendering=\"crispEdges\"><rect width=\"")
      .append(n)
      .append("\" height=\"")
      .append(n)
      .append("\" fill=\"#fff\"/><path fill=\"#000\" d=\"");
  // One rectangle per horizontal run of dark modules keeps the path short.
  for (int y = 0; y < matrix->size; ++y) {
    for (int x = 0; x < matrix->size;) {
      if (!matrix->IsDark(x, y)) {
        ++x;
        continue;
      }
      int end = x;
      while (end < matrix->size && matrix->IsDark(end, y)) ++end;
      const std::string run = std::to_string(end - x);
      svg.append("M")
          .append(std::to_string(x))
          .append(",")
          .append(std::to_string(y))
          .append("h")
          .append(run)
          .append("v1h-")
          .append(run)
          .append("z");
      x = end;
    }
  }
  svg.append("\"/></svg>");
  return svg;
}

}  // namespace sb::identity
