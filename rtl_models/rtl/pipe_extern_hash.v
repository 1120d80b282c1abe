`default_nettype none
// pipe_extern_hash: the hash extern, Linux jhash2 (docs/pipeline.md 5.7, kind 1).
//
// jhash2(k, n, seed) over the n = length / 4 little-endian u32 words of the buffer:
// a = b = c = 0xdeadbeef + 4n + seed; while n > 3: add three words, mix; then the 3, 2, 1
// remaining words and final; 0 words: c. One combinational pass over at most 16 words (five
// mix rounds and final); the result is registered.
module pipe_extern_hash (
    input  wire         clk,
    input  wire         rst,
    input  wire         in_valid,
    input  wire [511:0] key_bytes,   // zero-padded
    input  wire [6:0]   key_length,  // bytes, a multiple of 4
    input  wire [31:0]  seed,
    output reg          out_valid,
    output reg  [63:0]  out_value
);
    function [31:0] rol;
        input [31:0] x;
        input integer r;
        begin
            rol = (x << r) | (x >> (32 - r));
        end
    endfunction

    reg [31:0] a, b, c;
    reg [4:0] n, rem, k;
    integer round;

    // computed at the clock edge when the unit executes (see pipe_alu)
    always @(posedge clk) begin
        if (in_valid) begin
            n = key_length[6:2];
            a = 32'hdeadbeef + {n, 2'b00} + seed;
            b = a;
            c = a;
            rem = n;
            k = 0;
            for (round = 0; round < 5; round = round + 1) begin
                if (rem > 3) begin
                    a = a + key_bytes[32 * k +: 32];
                    b = b + key_bytes[32 * (k + 1) +: 32];
                    c = c + key_bytes[32 * (k + 2) +: 32];
                    a = a - c; a = a ^ rol(c, 4);  c = c + b;
                    b = b - a; b = b ^ rol(a, 6);  a = a + c;
                    c = c - b; c = c ^ rol(b, 8);  b = b + a;
                    a = a - c; a = a ^ rol(c, 16); c = c + b;
                    b = b - a; b = b ^ rol(a, 19); a = a + c;
                    c = c - b; c = c ^ rol(b, 4);  b = b + a;
                    k = k + 3;
                    rem = rem - 3;
                end
            end
            if (rem != 0) begin
                if (rem == 3)
                    c = c + key_bytes[32 * (k + 2) +: 32];
                if (rem >= 2)
                    b = b + key_bytes[32 * (k + 1) +: 32];
                a = a + key_bytes[32 * k +: 32];
                c = c ^ b; c = c - rol(b, 14);
                a = a ^ c; a = a - rol(c, 11);
                b = b ^ a; b = b - rol(a, 25);
                c = c ^ b; c = c - rol(b, 16);
                a = a ^ c; a = a - rol(c, 4);
                b = b ^ a; b = b - rol(a, 14);
                c = c ^ b; c = c - rol(b, 24);
            end
            out_value <= {32'd0, c};
        end
        if (rst)
            out_valid <= 1'b0;
        else
            out_valid <= in_valid;
    end
endmodule
