// The HTTP side of `ember serve` (cpp-httplib): routes, the API key, body limits and
// timeouts, and the OpenAI response shapes of each endpoint (plain JSON or server-sent
// events). Every error is OpenAI's {"error": {...}} object with a status naming its kind.
#pragma once
#include <httplib.h>

#include "state.h"

namespace ember::cli::serve {

// Sets up the routes and limits of `svr` for the state (which must outlive it).
void configure_server(httplib::Server& svr, ServerState& state);

}  // namespace ember::cli::serve
