# Fails when a file of src/wick includes a header of a layer above its own or of another folder of
# its own layer, or names a header through a relative path that leaves its folder ("../"). Run by
# the build (target wick_layer_check) with -DSOURCE_DIR=<the source tree> -DSTAMP=<file to touch
# when all is well>; the layers are WICK_LAYERS of cmake/layers.cmake.
cmake_policy(VERSION 3.25)
include(${CMAKE_CURRENT_LIST_DIR}/layers.cmake)

file(GLOB_RECURSE sources RELATIVE ${SOURCE_DIR}/src/wick ${SOURCE_DIR}/src/wick/*.h ${SOURCE_DIR}/src/wick/*.cpp
     ${SOURCE_DIR}/src/wick/*.cu ${SOURCE_DIR}/src/wick/*.cuh)
set(problems "")
foreach(source IN LISTS sources)
  string(REGEX REPLACE "/.*" "" folder "${source}")
  wick_layer_rank(${folder} rank)
  if(rank LESS 0)
    string(APPEND problems "\n  src/wick/${source}: src/wick/${folder} is in no layer of WICK_LAYERS")
    continue()
  endif()
  file(STRINGS ${SOURCE_DIR}/src/wick/${source} includes REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]")
  foreach(line IN LISTS includes)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*[\"<]([^\">]*)[\">].*" "\\1" header "${line}")
    if(header MATCHES "^wick/([^/]+)/")
      set(header_folder ${CMAKE_MATCH_1})
      wick_layer_rank(${header_folder} header_rank)
      if(NOT header_folder STREQUAL folder AND (header_rank LESS 0 OR NOT header_rank LESS rank))
        string(APPEND problems "\n  src/wick/${source} includes ${header}: src/wick/${header_folder} is not below "
                               "src/wick/${folder}")
      endif()
    elseif(header MATCHES "(^|/)\\.\\./")
      string(APPEND problems "\n  src/wick/${source} includes ${header}: name headers of other folders as wick/...")
    endif()
  endforeach()
endforeach()

if(problems)
  string(REPLACE " " "|" order "${WICK_LAYERS}")
  string(REPLACE ";" " < " order "${order}")
  message(FATAL_ERROR "A file includes a header of a layer above its own or beside it (layers: ${order}; "
                      "cmake/layers.cmake):${problems}")
endif()
file(TOUCH ${STAMP})
