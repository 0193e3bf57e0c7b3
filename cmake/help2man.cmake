# Makes a manual page from a program's own --help (cmake -DPROGRAM=... -DNAME=... -DSECTION=1
# -DVERSION=... -DOUT=... -P cmake/help2man.cmake), for the programs without a table-made
# page of their own (shardz-sim): its first line is the synopsis, its second the summary, and
# the whole text the description, as printed (so the page says what --help says).
execute_process(COMMAND "${PROGRAM}" --help OUTPUT_VARIABLE help RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} --help exited with ${rc}")
endif()
string(REPLACE "\\" "\\e" help "${help}")
string(REPLACE "-" "\\-" help "${help}")
string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" help "${help}")
string(REGEX MATCH "^[^\n]*\n([^\n]*)" _ "${help}")
set(summary "${CMAKE_MATCH_1}")
string(REGEX REPLACE "\\.$" "" summary "${summary}")
string(SUBSTRING "${summary}" 0 1 first)
string(SUBSTRING "${summary}" 1 -1 rest)
string(TOLOWER "${first}" first)
set(summary "${first}${rest}")
string(TOUPPER "${NAME}" upper)
file(WRITE "${OUT}"
  ".\\\" ${NAME}(${SECTION}), generated from '${NAME} --help' by cmake/help2man.cmake.\n"
  ".TH ${upper} ${SECTION} \"\" \"shardz ${VERSION}\" \"User Commands\"\n"
  ".SH NAME\n${NAME} \\- ${summary}\n"
  ".SH DESCRIPTION\n.nf\n${help}.fi\n"
  ".SH SEE ALSO\n.BR shardzd (8),\n.BR shardzctl (1)\n")
