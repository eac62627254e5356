// Names and sizes of safetensors element types.
#include "wick/io/file_dtype.h"

#include <array>

#include "wick/base/error.h"

namespace wick::io {
namespace {

struct DtypeInfo {
  FileDtype dtype;
  std::string_view name;
  size_t size;
};

constexpr std::array<DtypeInfo, 17> kDtypes = {{
    {FileDtype::BOOL, "BOOL", 1},    {FileDtype::U8, "U8", 1},
    {FileDtype::I8, "I8", 1},        {FileDtype::F8_E5M2, "F8_E5M2", 1},
    {FileDtype::F8_E4M3, "F8_E4M3", 1}, {FileDtype::F8_E8M0, "F8_E8M0", 1},
    {FileDtype::I16, "I16", 2},      {FileDtype::U16, "U16", 2},
    {FileDtype::F16, "F16", 2},      {FileDtype::BF16, "BF16", 2},
    {FileDtype::I32, "I32", 4},      {FileDtype::U32, "U32", 4},
    {FileDtype::F32, "F32", 4},      {FileDtype::C64, "C64", 8},
    {FileDtype::F64, "F64", 8},      {FileDtype::I64, "I64", 8},
    {FileDtype::U64, "U64", 8},
}};

const DtypeInfo& info(FileDtype dtype) {
  auto index = size_t(dtype);
  if (index >= kDtypes.size()) fail("invalid FileDtype value ", index);
  return kDtypes[index];
}

}  // namespace

std::string_view file_dtype_name(FileDtype dtype) { return info(dtype).name; }
size_t file_dtype_size(FileDtype dtype) { return info(dtype).size; }

FileDtype parse_file_dtype(std::string_view name, std::string_view context) {
  for (const auto& d : kDtypes) {
    if (d.name == name) return d.dtype;
  }
  // Elements smaller than a byte cannot be viewed as a byte range per element.
  if (name == "F4" || name == "F6_E2M3" || name == "F6_E3M2")
    fail(context, ": dtype '", name, "' (sub-byte elements) is not supported");
  fail(context, ": unknown dtype '", name, "'");
}

}  // namespace wick::io
