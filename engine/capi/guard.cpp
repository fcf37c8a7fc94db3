// The C ABI guard's error state (engine/capi/guard.h).
#include "engine/capi/guard.h"

#include <exception>
#include <new>

namespace ember::capi {

namespace {

thread_local std::string t_last_error;
// Non-null when the last message could not be stored (no memory): what to report instead.
thread_local const char* t_fixed_error = nullptr;

}  // namespace

ember_status set_error(ember_status code, std::string_view message) noexcept {
  try {
    t_last_error.assign(message);
    t_fixed_error = nullptr;
  } catch (...) {  // std::bad_alloc: the text does not fit in what memory is left
    t_fixed_error = "out of memory (the error message could not be stored)";
  }
  return code;
}

ember_status to_c(const Status& s) noexcept {
  if (s.ok()) return EMBER_OK;
  return set_error(static_cast<ember_status>(static_cast<int>(s.code())), s.message());
}

const char* last_error() noexcept { return t_fixed_error ? t_fixed_error : t_last_error.c_str(); }

// Composes "fn: what" without throwing (set_error's fallback covers a failed allocation).
static ember_status fail_with(ember_status code, const char* fn, std::string_view what) noexcept {
  try {
    std::string msg(fn);
    msg += ": ";
    msg += what;
    return set_error(code, msg);
  } catch (...) {
    return set_error(code, fn);  // may still take the fixed out-of-memory text
  }
}

ember_status caught_exception(const char* fn) noexcept {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return fail_with(EMBER_ERR_OUT_OF_MEMORY, fn, "out of memory");
  } catch (const std::exception& e) {
    return fail_with(EMBER_ERR_INTERNAL, fn, e.what());
  } catch (...) {
    return fail_with(EMBER_ERR_INTERNAL, fn, "unknown error");
  }
}

ember_status check_required(const char* fn, std::initializer_list<Required> required) noexcept {
  for (const Required& r : required) {
    if (r.ptr) continue;
    try {
      return fail_with(EMBER_ERR_INVALID_ARGUMENT, fn, std::string(r.name) + " is NULL");
    } catch (...) {
      return set_error(EMBER_ERR_INVALID_ARGUMENT, fn);
    }
  }
  return EMBER_OK;
}

}  // namespace ember::capi
