`default_nettype none
// pipe_alu: the ALU of one VLIW slot (docs/pipeline.md 5.3, op codes 1..21).
//
// Operands arrive in the stage's execute cycle; the result is registered (it is written
// back in the next cycle). Window ops, adjust ops, nop and the reserved codes are not
// ALU ops: out_valid stays 0 for them. w32: both operands are truncated to 32 bits and the
// result is zero-extended (eBPF ALU32). Edge cases as hw/pipeline/ops.py: division by 0
// gives 0, modulo by 0 gives A, shifts are masked to 31 / 63, MIN s/ -1 = MIN.
module pipe_alu #(
    parameter MUL_MAX_BITS = 32,  // widest mul: 0 (none), 32 or 64 (ebpf.mul_max_bits)
    parameter DIV = "none"        // divider: "none", "constant" or "full" (ebpf.div)
) (
    input  wire        clk,
    input  wire        rst,
    input  wire        in_valid,   // the slot executes: packet valid and predicate true
    input  wire [5:0]  opcode,
    input  wire        w32,
    input  wire        sgn,        // ext: sign-extend
    input  wire [1:0]  size,       // size code: 1, 2, 4, 8 bytes
    input  wire [2:0]  offset,     // ext / ins: first byte
    input  wire        sel,        // sel: P_t[sel]
    input  wire [63:0] a,
    input  wire [63:0] b,
    output reg         out_valid,  // an ALU op executed: out_result is to be written
    output reg  [63:0] out_result
);
    localparam HAS_DIV = DIV != "none";
    localparam [63:0] MIN64 = 64'h8000000000000000;

`ifndef SYNTHESIS
    initial begin
        if (MUL_MAX_BITS != 0 && MUL_MAX_BITS != 32 && MUL_MAX_BITS != 64) begin
            $display("pipe_alu: MUL_MAX_BITS %0d must be 0, 32 or 64", MUL_MAX_BITS);
            $finish;
        end
        if (DIV != "none" && DIV != "constant" && DIV != "full") begin
            $display("pipe_alu: DIV must be \"none\", \"constant\" or \"full\"");
            $finish;
        end
    end
`endif

    reg [63:0] m;          // the width's mask
    reg [63:0] aw, bw;     // operands on w bits
    reg [63:0] sa, sb;     // operands on w bits, sign-extended to 64
    reg [5:0]  sh;         // shift amount, masked to w - 1
    reg [63:0] smask;      // the size's mask
    reg [63:0] field, v;
    reg signed [63:0] ssa, ssb, sq;  // signed arithmetic apart: an unsigned context would
                                     // turn / % >>> into their unsigned forms
    reg [63:0] r;

    wire is_alu = opcode >= 6'd1 && opcode <= 6'd21;

    // Computed at the clock edge, and only when the slot executes: an idle slot costs no
    // simulation time; synthesis sees the same logic behind a clock enable.
    always @(posedge clk) begin
        if (in_valid) begin
            m = w32 ? 64'h00000000ffffffff : {64{1'b1}};
            aw = a & m;
            bw = b & m;
            sa = w32 ? {{32{a[31]}}, a[31:0]} : a;
            sb = w32 ? {{32{b[31]}}, b[31:0]} : b;
            sh = w32 ? {1'b0, b[4:0]} : b[5:0];
            ssa = sa;
            ssb = sb;
            sq = 0;
            case (size)
                2'd0: smask = 64'h00000000000000ff;
                2'd1: smask = 64'h000000000000ffff;
                2'd2: smask = 64'h00000000ffffffff;
                default: smask = {64{1'b1}};
            endcase
            field = 0;
            v = 0;
            r = 0;
            case (opcode)
                6'd1: r = bw;                                   // mov
                6'd2: r = (a + b) & m;                          // add
                6'd3: r = (a - b) & m;                          // sub
                6'd4: begin                                     // mul
                    if (MUL_MAX_BITS >= 64)
                        r = (a * b) & m;
                    else if (MUL_MAX_BITS >= 32)
                        r = {32'd0, a[31:0] * b[31:0]} & m;
                end
                6'd5: if (HAS_DIV && bw != 0) r = aw / bw;      // div: B = 0 gives 0
                6'd6: begin                                     // sdiv
                    if (!HAS_DIV || sb == 0)
                        r = 0;
                    else if (!w32 && a == MIN64 && b == {64{1'b1}})
                        r = MIN64;
                    else begin
                        sq = ssa / ssb;
                        r = sq & m;
                    end
                end
                6'd7: r = (HAS_DIV && bw != 0) ? aw % bw : aw; // mod: B = 0 gives A
                6'd8: begin                                     // smod
                    if (!HAS_DIV || sb == 0)
                        r = aw;
                    else if (sb == {64{1'b1}})
                        r = 0;
                    else begin
                        sq = ssa % ssb;
                        r = sq & m;
                    end
                end
                6'd9: r = (a | b) & m;                          // or
                6'd10: r = (a & b) & m;                         // and
                6'd11: r = (a ^ b) & m;                         // xor
                6'd12: r = (aw << sh) & m;                      // lsh
                6'd13: r = aw >> sh;                            // rsh
                6'd14: begin                                    // arsh
                    sq = ssa >>> sh;
                    r = sq & m;
                end
                6'd15: r = (~a + 64'd1) & m;                    // neg
                6'd16: begin                                    // sext
                    case (size)
                        2'd0: r = {{56{a[7]}}, a[7:0]} & m;
                        2'd1: r = {{48{a[15]}}, a[15:0]} & m;
                        2'd2: r = {{32{a[31]}}, a[31:0]} & m;
                        default: r = a & m;
                    endcase
                end
                6'd17: begin                                    // be: byte swap
                    case (size)
                        2'd1: r = {48'd0, a[7:0], a[15:8]};
                        2'd2: r = {32'd0, a[7:0], a[15:8], a[23:16], a[31:24]};
                        2'd3: r = {a[7:0], a[15:8], a[23:16], a[31:24],
                                   a[39:32], a[47:40], a[55:48], a[63:56]};
                        default: r = {56'd0, a[7:0]};
                    endcase
                end
                6'd18: r = a & smask;                           // le: truncate
                6'd19: begin                                    // ext
                    v = (a >> (8 * offset)) & smask;
                    if (sgn) begin
                        case (size)
                            2'd0: v = {{56{v[7]}}, v[7:0]};
                            2'd1: v = {{48{v[15]}}, v[15:0]};
                            2'd2: v = {{32{v[31]}}, v[31:0]};
                            default: v = v;
                        endcase
                    end
                    r = v;
                end
                6'd20: begin                                    // ins
                    field = smask << (8 * offset);
                    r = (a & ~field) | ((b << (8 * offset)) & field);
                end
                6'd21: r = (sel ? a : b) & m;                   // sel
                default: r = 0;
            endcase
            out_result <= r;
        end
        if (rst)
            out_valid <= 1'b0;
        else
            out_valid <= in_valid && is_alu;
    end
endmodule
