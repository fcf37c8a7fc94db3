# ctest structure.runtime_library_has_no_offline_code:
#   cmake -DNM=<nm> -DLIB=<libember.a> -P check-runtime-symbols.cmake
# Fails when the runtime library defines or references a symbol of the offline world:
# Eigen, the GGUF writer, quantize/synth, LoRA blend/merge/save (DESIGN.md "Modules").
if(NOT NM OR NOT LIB)
  message(FATAL_ERROR "usage: cmake -DNM=<nm> -DLIB=<library> -P check-runtime-symbols.cmake")
endif()
execute_process(COMMAND ${NM} -C ${LIB} OUTPUT_VARIABLE symbols RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} -C ${LIB} failed: ${err}")
endif()
string(LENGTH "${symbols}" n)
if(n LESS 1000)
  message(FATAL_ERROR "${LIB}: nm listed almost nothing; is it the library?")
endif()
set(forbidden "[Ee]igen|GgufWriter|GgufStreamWriter|QuantizeModel|SynthModel|lora_blend|lora_merge|lora_write_gguf|ember_quantize_|ember_synth_|ember_lora_save|ember_lora_blend|ember_lora_merge")
string(REGEX MATCHALL "[^\n]*(${forbidden})[^\n]*" hits "${symbols}")
if(hits)
  list(LENGTH hits nhits)
  list(SUBLIST hits 0 10 shown)
  list(JOIN shown "\n  " shown)
  message(FATAL_ERROR "${LIB}: ${nhits} symbol(s) of offline code in the runtime library, e.g.\n  ${shown}")
endif()
message(STATUS "${LIB}: no offline symbols")
