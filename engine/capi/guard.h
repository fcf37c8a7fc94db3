// The one guard of the C ABI (include/ember/ember.h, include/ember/ember_tools.h).
//
// Every extern "C" entry point of the runtime and offline libraries runs its body inside
// guard() (or guard_value()/guard_void() for functions returning a value or nothing):
//  - NULL required pointers (handles, out-parameters) -> EMBER_ERR_INVALID_ARGUMENT
//    naming the function and the argument, before the body runs;
//  - std::bad_alloc -> EMBER_ERR_OUT_OF_MEMORY; any other exception -> EMBER_ERR_INTERNAL;
//    nothing thrown inside the library crosses the C ABI (which would std::terminate);
//  - the failure's message becomes ember_last_error() of the calling thread.
// Pointer/int functions return their sentinel (NULL, -1, 0: as ember.h documents) on failure.
// Not guarded, because they cannot throw or fail: ember_version, ember_last_error and the
// *_default_params functions (constants and plain structs, no allocation).
//
//   return capi::guard("ember_eval", {{"ctx", ctx}}, [&] { ...; return EMBER_OK; });
//
// Setting the message never throws: when even the message cannot be stored (out of
// memory), ember_last_error() gives a fixed text instead.
#pragma once
#include <initializer_list>
#include <string>
#include <string_view>

#include "core/status.h"
#include "ember/ember.h"

namespace ember::capi {

// A pointer argument that must not be NULL, and its name in the error message.
struct Required {
  const char* name;
  const void* ptr;
};

// Sets ember_last_error() of this thread to message; returns code.
ember_status set_error(ember_status code, std::string_view message) noexcept;
// EMBER_OK for an ok status; otherwise its code, its message in ember_last_error().
ember_status to_c(const Status& s) noexcept;
// The last error message of this thread ("" if none).
const char* last_error() noexcept;

// For the guards: the status of the exception being handled (call only inside a catch).
ember_status caught_exception(const char* fn) noexcept;
// INVALID_ARGUMENT "fn: name is NULL" when a required pointer is NULL, else EMBER_OK.
ember_status check_required(const char* fn, std::initializer_list<Required> required) noexcept;

template <class F>
ember_status guard(const char* fn, std::initializer_list<Required> required, F&& body) noexcept {
  try {
    if (ember_status s = check_required(fn, required); s != EMBER_OK) return s;
    return body();
  } catch (...) {
    return caught_exception(fn);
  }
}

// For entry points that return a value: `fallback` on a NULL required pointer or an exception.
template <class T, class F>
T guard_value(const char* fn, T fallback, std::initializer_list<Required> required, F&& body) noexcept {
  try {
    if (check_required(fn, required) != EMBER_OK) return fallback;
    return body();
  } catch (...) {
    caught_exception(fn);
    return fallback;
  }
}

// For entry points that return nothing (setters, free functions: NULL is a no-op there).
template <class F>
void guard_void(const char* fn, F&& body) noexcept {
  try {
    body();
  } catch (...) {
    caught_exception(fn);
  }
}

}  // namespace ember::capi
