#include "loader/gguf.h"
