#!/usr/bin/env bash
# STYLE.md "Safety", enforced (curl's checksrc): no sprintf, vsprintf, strcpy, strcat, atoi, atol or gets in
# controller/ or include/. Comments and string literals are blanked first (lines kept), so prose may name them.
set -euo pipefail
top=${CANARY_SOURCE_DIR:?}
cd "$top"
hits=$(find controller include -name '*.[ch]' -print0 | sort -z | xargs -0 perl -0777 -ne '
	my $src = $_;
	# blank comments and literals, keeping newlines so line numbers hold
	$src =~ s{(/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|'"'"'(?:\\.|[^'"'"'\\\n])*'"'"')}{ (my $m = $1) =~ s/[^\n]/ /g; $m }gse;
	my $n = 0;
	for my $line (split /\n/, $src, -1) {
		$n++;
		while ($line =~ /(?<![\w.>])(sprintf|vsprintf|strcpy|strcat|atoi|atol|gets)\s*\(/g) {
			print "$ARGV:$n: banned function $1() (STYLE.md, Safety)\n";
		}
	}
')
if [ -n "$hits" ]; then
	echo "$hits" >&2
	echo "use snprintf with a checked result, strtol/strtod with an end-pointer check, or fgets/getline" >&2
	exit 1
fi
