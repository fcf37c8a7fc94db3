// Internal bridge for C API sections implemented outside engine/c_api.cpp (e.g.
// engine/c_api_call.cpp): the C++ objects behind the opaque handles and the
// thread's last-error message. Not part of the public API.
#pragma once
#include <string>

#include "ember/ember.h"

namespace ember {
class Model;
class Context;
}  // namespace ember

namespace ember::capi {

const Model* model_of(const ember_model* m);          // nullptr for a null handle
Context* context_of(ember_context* c);                // nullptr for a null handle
// Sets ember_last_error() of this thread; returns code.
ember_status set_error(ember_status code, const std::string& message);

}  // namespace ember::capi
