// pipe_files.vh: names of the memory image files (docs/pipeline.md section 11).
//
// Included inside the body of a module that declares the string parameter IMAGE_DIR.
// Verilog-2005 has no string type: names are built in wide vectors and squeezed, because
// $fopen and $readmemh read NUL bytes inside a name as spaces.
localparam NAME_BYTES = 512;

// `s` with every NUL byte removed (the remaining bytes keep their order).
function [8*NAME_BYTES-1:0] name_squeeze;
    input [8*NAME_BYTES-1:0] s;
    integer i, k;
    begin
        name_squeeze = 0;
        k = 0;
        for (i = 0; i < NAME_BYTES; i = i + 1) begin
            if (s[8*i +: 8] != 8'd0) begin
                name_squeeze[8*k +: 8] = s[8*i +: 8];
                k = k + 1;
            end
        end
    end
endfunction

// IMAGE_DIR/<name>, for files without a stage number (parser.hex, deparser.hex).
function [8*NAME_BYTES-1:0] image_file;
    input [8*32-1:0] name;
    begin
        image_file = name_squeeze({IMAGE_DIR, "/", name});
    end
endfunction

// IMAGE_DIR/stLL<suffix>: suffix "_gw.hex", "_vliw.hex", "_tbl.hex", "_sfu.hex", "_ext.hex".
function [8*NAME_BYTES-1:0] stage_file;
    input integer ll;
    input [8*32-1:0] suffix;
    reg [7:0] d1, d0;
    begin
        d1 = 8'd48 + ll / 10;
        d0 = 8'd48 + ll % 10;
        stage_file = name_squeeze({IMAGE_DIR, "/st", d1, d0, suffix});
    end
endfunction

// IMAGE_DIR/stLL_<unit_kind><unit><suffix>: "_t" T "_key.hex" or "_r" U ".hex".
function [8*NAME_BYTES-1:0] unit_file;
    input integer ll;
    input [8*8-1:0] unit_kind;
    input integer unit;
    input [8*32-1:0] suffix;
    reg [7:0] d1, d0, u;
    begin
        d1 = 8'd48 + ll / 10;
        d0 = 8'd48 + ll % 10;
        u = 8'd48 + unit;
        unit_file = name_squeeze({IMAGE_DIR, "/st", d1, d0, unit_kind, u, suffix});
    end
endfunction

// Whether a file can be opened (an absent image means all-zero, section 11).
function file_exists;
    input [8*NAME_BYTES-1:0] name;
    integer fd;
    begin
        fd = $fopen(name, "r");
        file_exists = fd != 0;
        if (fd != 0)
            $fclose(fd);
    end
endfunction
