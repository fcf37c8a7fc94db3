// `ember serve --server URL`: an edge server that forwards. A chat request answered as a
// function call is answered by the slot's local ember_call first; the device router's
// decision (router/route.h, the same as `ember call --server`) says whether that call
// stands or the query goes to the upstream server's /v1/chat/completions. The slot is
// returned before the upstream is asked, so a slow upstream holds no slot. An upstream
// that is unreachable, errs or is slower than --server-timeout leaves the local call
// standing. The response says where its call came from in "ember_route".
#pragma once
#include "generation.h"

namespace ember::cli::serve {

// After the local call (a->route set by run_tool_call when --server is given): releases
// the job's slot, asks the upstream when the router says so (with the request's tools, or
// the registry's), puts its call in *a when it answered, counts the route in the metrics
// and sets job->route to the "ember_route" object:
//   {"source": "local"|"server", "score", "score_name", "threshold", "route": auto|local|server,
//    "server_ms" (when asked), "server_error" (when asked and it failed),
//    "local": {"name", "arguments"} (when the upstream's call replaced the local one)}.
// Without --server it does nothing.
void forward_tool_call(ServerState& s, Job* job, CallAnswer* a);

}  // namespace ember::cli::serve
