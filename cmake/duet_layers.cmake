# Helpers shared by every duet target: warnings as errors on our code, OpenMP, and the
# per-file ISA flags (files named *_avx2.cpp are compiled for AVX2+FMA, *_vnni.cpp also for
# AVX-VNNI, *_avx512.cpp for AVX-512 F/BW/DQ/VL, *_avx512vnni.cpp also for AVX-512 VNNI, and
# only called after the run-time dispatch in kernels/isa.h has checked the CPU).

function(duet_target_setup target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror)
  target_include_directories(${target} PUBLIC ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(${target} PUBLIC OpenMP::OpenMP_CXX)
endfunction()

function(duet_mark_isa_sources)
  foreach(src ${ARGN})
    if(src MATCHES "_avx2\\.cpp$")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
    elseif(src MATCHES "_vnni\\.cpp$")  # AVX-VNNI (VEX): int8 dot products, checked at run time
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mavxvnni")
    elseif(src MATCHES "_avx512vnni\\.cpp$")  # AVX-512 VNNI, checked at run time
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS
        "-mavx2;-mfma;-mavx512f;-mavx512bw;-mavx512dq;-mavx512vl;-mavx512vnni")
    elseif(src MATCHES "_avx512\\.cpp$")  # keep these files free of shared inline code (ODR)
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS
        "-mavx2;-mfma;-mf16c;-mavx512f;-mavx512bw;-mavx512dq;-mavx512vl")
    endif()
  endforeach()
endfunction()

# duet_layer(name dep...) builds src/duet/<name>/**/*.cpp into the static library duet_<name>.
function(duet_layer name)
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/duet/${name}/*.cpp)
  if(NOT sources)
    add_library(duet_${name} INTERFACE)
    target_include_directories(duet_${name} INTERFACE ${CMAKE_SOURCE_DIR}/src)
    return()
  endif()
  duet_mark_isa_sources(${sources})
  add_library(duet_${name} STATIC ${sources})
  duet_target_setup(duet_${name})
  foreach(dep ${ARGN})
    target_link_libraries(duet_${name} PUBLIC duet_${dep})
  endforeach()
  target_link_libraries(duet_${name} PUBLIC nlohmann_json::nlohmann_json ZLIB::ZLIB PNG::PNG JPEG::JPEG)
endfunction()
